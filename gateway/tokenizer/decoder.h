// Decoders of tokenizer.json ("decoder"): ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, BPEDecoder, WordPiece and Sequence, built as a
// chain of streaming stages.
//
// Every decoder of the reference maps a list of token strings to a list of
// strings. Here each one is a stage that receives tokens piece by piece and
// passes on only output that no later token can change, so one pipeline
// serves both the full decode (push every token, Finish) and the streaming
// detokenizer (push one token, read what became final). The concatenation
// of the streamed text therefore equals the full decode by construction, and
// pieces never end inside a UTF-8 character.
//
// Thread-safety: DecoderChain is immutable and shared; a DecodePipeline
// belongs to one decode or one stream.
#ifndef MOE_GATEWAY_TOKENIZER_DECODER_H_
#define MOE_GATEWAY_TOKENIZER_DECODER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

// One decoder of the chain, fed with pieces of tokens: `text` continues the
// current token unless `begins_token`; `ends_token` closes it. A whole token
// arrives as one Push with both flags set.
class DecodeStage {
 public:
  virtual ~DecodeStage() = default;
  virtual void Push(absl::string_view text, bool begins_token, bool ends_token) = 0;
  // End of input: close any open token and pass on everything held back.
  virtual void Finish() = 0;
};

class DecodePipeline {
 public:
  // Feeds one token string (the content of one id).
  void PushToken(absl::string_view token);
  void Finish();
  // The text that became final since the last call.
  std::string TakeOutput();
  // The first error a stage met (a regex that failed); OK otherwise.
  const absl::Status& status() const { return status_; }

 private:
  friend class DecoderChain;
  class Sink;
  DecodePipeline();
  std::unique_ptr<DecodeStage> sink_;
  std::vector<std::unique_ptr<DecodeStage>> stages_;  // stages_.back() receives the tokens
  std::string output_;
  absl::Status status_;
};

class DecoderChain {
 public:
  // `j` is the "decoder" object; JSON null means "join tokens with spaces",
  // as the reference does without a decoder.
  static absl::StatusOr<DecoderChain> FromJson(const nlohmann::json& j, absl::string_view where);
  std::unique_ptr<DecodePipeline> NewPipeline() const;

 private:
  using StageFactory = std::function<std::unique_ptr<DecodeStage>(DecodeStage* next, absl::Status* status)>;
  absl::Status Add(const nlohmann::json& j, absl::string_view where);
  std::vector<StageFactory> factories_;  // in decoding order
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_DECODER_H_
