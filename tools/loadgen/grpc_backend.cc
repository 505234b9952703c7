#include "tools/loadgen/grpc_backend.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe::loadgen {

absl::StatusOr<ModelFacts> QueryModelFacts(const std::string& address, int64_t timeout_ms,
                                           const rpc::TlsConfig& tls, const std::string& api_key) {
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(address, &tls));
  grpc::ClientContext ctx;
  if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
  ctx.set_deadline(rpc::DeadlineIn(timeout_ms));
  moe::v1::ModelInfo info;
  const grpc::Status status = stub->GetModelInfo(&ctx, moe::v1::GetModelInfoRequest(), &info);
  if (!status.ok()) {
    const absl::Status s = rpc::FromGrpcStatus(status);
    return absl::Status(s.code(), absl::StrCat("gateway ", address, ": GetModelInfo: ", s.message()));
  }
  ModelFacts facts;
  facts.model_id = info.model_id();
  facts.vocab_size = info.vocab_size();
  facts.eos_token_ids.assign(info.eos_token_ids().begin(), info.eos_token_ids().end());
  return facts;
}

namespace {

// One Generate stream; deletes itself after reporting.
class GenerateCall final : public grpc::ClientReadReactor<moe::v1::GenerateResponse> {
 public:
  GenerateCall(const RequestSpec& spec, const std::string& api_key, Clock::time_point origin,
               Backend::DoneCallback done)
      : origin_(origin), done_(std::move(done)) {
    if (!api_key.empty()) context_.AddMetadata("authorization", "Bearer " + api_key);
    record_.index = spec.index;
    record_.warmup = spec.warmup;
    record_.scheduled_s = spec.scheduled_s;
    record_.prompt_tokens = static_cast<int>(spec.token_ids.size());
    request_.set_request_id(absl::StrCat("loadgen-", spec.index));
    if (!spec.token_ids.empty()) {
      request_.mutable_token_ids()->mutable_ids()->Assign(spec.token_ids.begin(), spec.token_ids.end());
    } else {
      request_.set_text(spec.text);
    }
    request_.set_max_tokens(spec.max_tokens);
    request_.mutable_sampling()->set_temperature(static_cast<float>(spec.temperature));
    if (spec.ignore_eos) request_.mutable_sampling()->set_ignore_eos(true);
    context_.set_deadline(rpc::DeadlineIn(spec.timeout_ms));
  }

  void Start(moe::v1::Inference::Stub* stub) {
    record_.sent_s = Now();
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows
    const double t = Now();
    if (message_.tokens_size() > 0) {
      if (record_.first_token_s < 0) record_.first_token_s = t;
      record_.events.push_back({t, message_.tokens_size()});
      counted_tokens_ += message_.tokens_size();
    }
    if (message_.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) finished_ = true;
    if (message_.has_usage()) {
      usage_ = true;
      record_.prompt_tokens = static_cast<int>(message_.usage().prompt_tokens());
      record_.output_tokens = static_cast<int>(message_.usage().completion_tokens());
    }
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.done_s = Now();
    if (!usage_) record_.output_tokens = counted_tokens_;
    if (!status.ok()) {
      record_.ok = false;
      record_.status = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
      record_.error_message = status.error_message();
    } else if (!finished_) {
      record_.ok = false;
      record_.status = "INCOMPLETE";
      record_.error_message = "the stream ended without a finish reason";
    } else {
      record_.ok = true;
    }
    done_(std::move(record_));
    delete this;
  }

 private:
  double Now() const { return SecondsSince(origin_, Clock::now()); }

  const Clock::time_point origin_;
  Backend::DoneCallback done_;
  grpc::ClientContext context_;
  moe::v1::GenerateRequest request_;
  moe::v1::GenerateResponse message_;
  RequestRecord record_;
  int counted_tokens_ = 0;
  bool finished_ = false;
  bool usage_ = false;
};

}  // namespace

struct GrpcBackend::Impl {
  std::string address;
  std::string api_key;
  std::unique_ptr<moe::v1::Inference::Stub> stub;
};

GrpcBackend::GrpcBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcBackend::~GrpcBackend() = default;

std::unique_ptr<GrpcBackend> GrpcBackend::Create(const std::string& address, const rpc::TlsConfig& tls,
                                                 const std::string& api_key) {
  auto impl = std::make_unique<Impl>();
  impl->address = address;
  impl->api_key = api_key;
  impl->stub = moe::v1::Inference::NewStub(rpc::MakeChannel(address, &tls));
  return std::unique_ptr<GrpcBackend>(new GrpcBackend(std::move(impl)));
}

void GrpcBackend::Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) {
  (new GenerateCall(spec, impl_->api_key, origin, std::move(done)))->Start(impl_->stub.get());
}

std::string GrpcBackend::Describe() const { return absl::StrCat("grpc ", impl_->address); }

}  // namespace moe::loadgen
