// Byte-level BPE decoding (the GPT-2 byte <-> unicode map used by Qwen, Llama 3
// and DeepSeek tokenizers) and a streaming decoder that turns token ids into
// text deltas that never split a UTF-8 character.
//
// Thread-safety: ByteLevelVocab is immutable after FromTokenizerJson;
// StreamingDecoder holds per-stream state and belongs to one stream.
#ifndef MOE_GATEWAY_TOKENIZER_BYTE_LEVEL_H_
#define MOE_GATEWAY_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moe::tokenizer {

// The GPT-2 map: byte b is written as the code point ByteToCodepoint(b).
char32_t ByteToCodepoint(uint8_t b);
// The inverse; -1 for a code point that is not in the map.
int CodepointToByte(char32_t cp);

// The byte string of every token id of a byte-level BPE tokenizer.json
// (model vocab plus added tokens).
class ByteLevelVocab {
 public:
  // `json_text` is a tokenizer.json whose decoder is ByteLevel; `source` names it in errors.
  static absl::StatusOr<ByteLevelVocab> FromTokenizerJson(absl::string_view json_text,
                                                          absl::string_view source);
  static absl::StatusOr<ByteLevelVocab> FromFile(const std::string& path);

  int64_t size() const { return static_cast<int64_t>(bytes_.size()); }
  bool is_special(int32_t id) const { return special_[id]; }
  // INVALID_ARGUMENT naming the id when it is outside the vocabulary.
  absl::StatusOr<std::string_view> Bytes(int32_t id) const;

 private:
  std::vector<std::string> bytes_;
  std::vector<bool> special_;
};

// Feeds ids one at a time; each call returns the text that became complete.
class StreamingDecoder {
 public:
  StreamingDecoder(const ByteLevelVocab* vocab, bool skip_special_tokens)
      : vocab_(vocab), skip_special_(skip_special_tokens) {}
  absl::StatusOr<std::string> Push(int32_t id);
  // What is left at the end (an incomplete character becomes U+FFFD).
  std::string Finish();

 private:
  const ByteLevelVocab* vocab_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_BYTE_LEVEL_H_
