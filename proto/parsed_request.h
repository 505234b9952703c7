// Requests that fail to parse get INVALID_ARGUMENT, not UNIMPLEMENTED.
//
// gRPC 1.51's callback handlers fail a call whose request bytes do not parse
// (a truncated message, invalid UTF-8 in a proto3 `string` field) with
// UNIMPLEMENTED and an empty message, and protobuf logs an ERROR line for
// every such request. ParsingService<Base> re-registers a generated callback
// service's unary and server-streaming methods with a request type,
// ParsedRequest<P>, whose deserialization always succeeds and records what
// went wrong; the method then answers INVALID_ARGUMENT "<Type> could not be
// parsed: <why>" without calling the implementation. Protobuf's message about
// the request is captured for that answer instead of being logged.
//
// Use (in the service's constructor; index = the method's position in the
// .proto service):
//   class GatewayService : public rpc::ParsingService<moe::v1::Inference::CallbackService> {
//     GatewayService() { ParseUnary<GenerateRequest, CompleteResponse>(1, &GatewayService::Complete); }
#ifndef MOE_PROTO_PARSED_REQUEST_H_
#define MOE_PROTO_PARSED_REQUEST_H_

#include <string>

#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"

namespace moe::rpc {

template <typename Proto>
struct ParsedRequest {
  Proto message;
  std::string parse_error;  // empty when `message` parsed
};

// Parses `buffer` into `message`; on failure returns why, in words (with
// protobuf's own message, captured rather than logged). Clears `buffer`.
std::string ParseRequestBytes(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* message);

template <typename Base>
class ParsingService : public Base {
 protected:
  template <typename Request, typename Response, typename Service>
  void ParseUnary(int method_index,
                  grpc::ServerUnaryReactor* (Service::*method)(grpc::CallbackServerContext*, const Request*,
                                                                Response*)) {
    Service* self = static_cast<Service*>(this);
    this->MarkMethodCallback(
        method_index,
        new grpc::internal::CallbackUnaryHandler<ParsedRequest<Request>, Response>(
            [self, method](grpc::CallbackServerContext* context, const ParsedRequest<Request>* request,
                           Response* response) -> grpc::ServerUnaryReactor* {
              if (!request->parse_error.empty()) {
                grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
                reactor->Finish(Refusal<Request>(*request));
                return reactor;
              }
              return (self->*method)(context, &request->message, response);
            }));
  }

  template <typename Request, typename Response, typename Service>
  void ParseServerStreaming(int method_index,
                            grpc::ServerWriteReactor<Response>* (Service::*method)(grpc::CallbackServerContext*,
                                                                                   const Request*)) {
    Service* self = static_cast<Service*>(this);
    this->MarkMethodCallback(
        method_index,
        new grpc::internal::CallbackServerStreamingHandler<ParsedRequest<Request>, Response>(
            [self, method](grpc::CallbackServerContext* context,
                           const ParsedRequest<Request>* request) -> grpc::ServerWriteReactor<Response>* {
              if (!request->parse_error.empty()) return new Refused<Response>(Refusal<Request>(*request));
              return (self->*method)(context, &request->message);
            }));
  }

 private:
  template <typename Request>
  static grpc::Status Refusal(const ParsedRequest<Request>& request) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        Request::descriptor()->name() + " could not be parsed: " + request.parse_error);
  }

  // A stream that ends at once with `status`.
  template <typename Response>
  class Refused final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Refused(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
};

}  // namespace moe::rpc

namespace grpc {

template <typename Proto>
class SerializationTraits<moe::rpc::ParsedRequest<Proto>, void> {
 public:
  static Status Serialize(const moe::rpc::ParsedRequest<Proto>& request, ByteBuffer* buffer, bool* own_buffer) {
    return GenericSerialize<ProtoBufferWriter, Proto>(request.message, buffer, own_buffer);
  }
  // Always OK: a parse failure is recorded in the request, for the method
  // to answer INVALID_ARGUMENT.
  static Status Deserialize(ByteBuffer* buffer, moe::rpc::ParsedRequest<Proto>* request) {
    request->parse_error = moe::rpc::ParseRequestBytes(buffer, &request->message);
    return Status::OK;
  }
};

}  // namespace grpc

#endif  // MOE_PROTO_PARSED_REQUEST_H_
