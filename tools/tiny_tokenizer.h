// Tokenizer files for tiny test models: a real byte-level BPE tokenizer
// (Qwen3's) cut to a small vocabulary, written the way the shared fixtures were
// written (Python's json.dumps layout), so that `moe-model make-tiny --vocab 4096`
// reproduces tests/testdata/tiny-mixtral/tokenizer.json byte for byte.
//
// Plain functions, no state; safe to call from any thread.
#ifndef MOE_TOOLS_TINY_TOKENIZER_H_
#define MOE_TOOLS_TINY_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/gzip_file.h"  // ReadMaybeGzippedFile, used with the cuts
#include "nlohmann/json.hpp"

namespace moe {

// The special tokens of a cut tokenizer, given ids V-3, V-2, V-1 (eos = V-1).
inline constexpr std::array<std::string_view, 3> kTinySpecialTokens = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>"};

// The smallest vocabulary a cut can have: the 256 byte tokens + the specials.
inline constexpr int64_t kMinTinyVocab = 256 + 3;

// Cuts the byte-level BPE tokenizer.json text `base_json` (Qwen3 layout: a
// token's id is its merge rank) to `vocab_size` tokens: keeps the vocabulary
// entries with id < vocab_size-3, keeps the merges whose two parts and result
// are all kept (in order), and makes kTinySpecialTokens (copied from the base's
// added_tokens) the added tokens vocab_size-3..vocab_size-1. Normalizer,
// pre-tokenizer, post-processor and decoder are kept unchanged, and every key
// keeps its order. Returns the new tokenizer.json text. `source` names the base
// in error messages.
absl::StatusOr<std::string> CutByteLevelBpeTokenizer(std::string_view base_json,
                                                     int64_t vocab_size,
                                                     std::string_view source);

// tokenizer_config.json of a cut tokenizer: eos <|im_end|>, pad <|endoftext|>,
// no bos, and a ChatML chat template.
std::string TinyTokenizerConfigJson();

// `value` as Python's json.dumps(value, ensure_ascii=False) writes it: ", " and
// ": " separators on one line, or, with indent >= 0, one item per line indented
// by `indent` spaces per level. Throws nlohmann::json::type_error on invalid
// UTF-8 strings (values parsed by nlohmann are always valid).
std::string DumpJsonPythonStyle(const nlohmann::ordered_json& value, int indent = -1);

}  // namespace moe

#endif  // MOE_TOOLS_TINY_TOKENIZER_H_
