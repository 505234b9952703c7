// libFuzzer target: the bytes of a moe.v1.Inference Generate/Complete request
// as the gateway decodes them (ParseRequestBytes, the deserializer its gRPC
// methods use), then validated and tokenized (PrepareRequest with the
// tiny-mixtral tokenizer), then the first router messages translated back.
// Any bytes must give a request or a clear error: never a crash, a hang or
// unbounded memory. ctest runs it for a bounded time (label fuzz).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/generate_call.h"
#include "proto/parsed_request.h"

namespace {

const moe::tokenizer::Tokenizer& Tokenizer() {
  static const auto* t =
      moe::tokenizer::Tokenizer::FromDirectory(MOE_TESTDATA_DIR "/tiny-mixtral").value().release();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  grpc::Slice slice(data, size);
  grpc::ByteBuffer buffer(&slice, 1);
  moe::v1::GenerateRequest request;
  const std::string error = moe::rpc::ParseRequestBytes(&buffer, &request);
  if (!error.empty()) return 0;
  moe::v1::ModelInfo info;
  info.set_vocab_size(Tokenizer().vocab_size());
  info.set_context_length(4096);
  for (const bool streaming : {true, false}) {
    absl::StatusOr<moe::PreparedRequest> prepared =
        moe::PrepareRequest(request, Tokenizer(), info, "fuzz", moe::RequestLimits(), streaming);
    if (!prepared.ok()) {
      if (!absl::IsInvalidArgument(prepared.status()) || prepared.status().message().empty()) __builtin_trap();
      continue;
    }
    if (prepared->router.prompt_ids_size() > 4096) __builtin_trap();  // bounded by the context
    moe::ResponseTranslator translator(&Tokenizer(), *prepared);
    moe::internal::v1::RouterGenerateResponse m;
    m.add_tokens()->set_id(static_cast<uint32_t>(size % static_cast<size_t>(Tokenizer().vocab_size())));
    m.set_finish_reason(moe::v1::FINISH_REASON_LENGTH);
    for (int i = 0; i < prepared->best_of; ++i) {
      m.set_index(static_cast<uint32_t>(i));
      if (!translator.Translate(m).ok()) __builtin_trap();
    }
    (void)translator.Result();
  }
  return 0;
}
