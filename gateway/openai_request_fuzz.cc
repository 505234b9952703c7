// libFuzzer target: an OpenAI HTTP request body, as the gateway reads it
// (ParseOpenAiBody, then the completions and the chat translation with the
// tiny-mixtral chat template), must give a request or an INVALID_ARGUMENT /
// FAILED_PRECONDITION status: never a crash, a hang, unbounded recursion or
// unbounded memory. ctest runs it for a bounded time (label fuzz).
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/openai_request.h"

namespace {

const absl::StatusOr<moe::chat::ChatTemplate>& Template() {
  static const auto* t =
      new absl::StatusOr<moe::chat::ChatTemplate>(moe::chat::LoadChatTemplate(MOE_TESTDATA_DIR "/tiny-mixtral"));
  return *t;
}

void Check(const absl::Status& s) {
  if (s.ok()) return;
  // Every refusal names what is wrong with a client-side code.
  if (!absl::IsInvalidArgument(s) && !absl::IsFailedPrecondition(s)) __builtin_trap();
  if (s.message().empty()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!Template().ok()) __builtin_trap();  // the fixture must load
  absl::StatusOr<moe::OpenAiJson> body =
      moe::ParseOpenAiBody(std::string(reinterpret_cast<const char*>(data), size));
  Check(body.status());
  if (!body.ok()) return 0;
  absl::StatusOr<moe::OpenAiRequest> completion = moe::ParseCompletionRequest(*body);
  Check(completion.status());
  absl::StatusOr<moe::OpenAiRequest> chat = moe::ParseChatRequest(*body, Template());
  Check(chat.status());
  if (chat.ok() && chat->request.text().size() > 64 * size + 4096) __builtin_trap();  // no blow-up in rendering
  return 0;
}
