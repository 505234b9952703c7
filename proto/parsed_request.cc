#include "proto/parsed_request.h"

#include <mutex>

#include "google/protobuf/stubs/logging.h"

namespace moe::rpc {
namespace {

// Protobuf reports why a message failed to parse (e.g. invalid UTF-8 in a
// string field) only through its log. While ParseRequestBytes runs, the
// messages of this thread go into the request's error instead.
thread_local std::string* capture = nullptr;
google::protobuf::LogHandler* previous_handler = nullptr;

void CapturingLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                         const std::string& message) {
  if (capture != nullptr && level < google::protobuf::LOGLEVEL_FATAL) {
    if (!capture->empty()) capture->append("; ");
    capture->append(message);
    return;
  }
  if (previous_handler != nullptr) previous_handler(level, filename, line, message);
}

void InstallHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] { previous_handler = google::protobuf::SetLogHandler(&CapturingLogHandler); });
}

}  // namespace

std::string ParseRequestBytes(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* message) {
  InstallHandlerOnce();
  std::string logged;
  capture = &logged;
  const grpc::Status status = grpc::GenericDeserialize<grpc::ProtoBufferReader, google::protobuf::MessageLite>(
      buffer, message);
  capture = nullptr;
  if (status.ok()) return "";
  // Trailing blanks and the protobuf's advice to use `bytes` are not for the caller.
  while (!logged.empty() && (logged.back() == ' ' || logged.back() == '\n')) logged.pop_back();
  if (!logged.empty()) return logged;
  if (!status.error_message().empty()) return status.error_message();
  return "the bytes are not a valid protobuf message (truncated or malformed)";
}

}  // namespace moe::rpc
