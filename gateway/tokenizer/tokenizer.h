// A Hugging Face tokenizer.json in C++: text -> token ids -> text, exact to
// the reference `tokenizers` library for BPE models (byte-level BPE as in
// Qwen, Llama 3 and DeepSeek; SentencePiece-style BPE with byte fallback as in
// Mistral). Knows nothing of gRPC.
//
// Encoding runs: added-token matching -> normalizer -> added tokens matched
// after normalization -> pre-tokenizer -> BPE model -> post-processor.
// Decoding runs the decoder chain (see decoder.h); StreamDecoder runs the
// same chain one id at a time.
//
// Known differences from the reference: regexes run on PCRE2 and Unicode data
// comes from utf8proc, so code points assigned after those libraries' Unicode
// version (PCRE2 10.42: Unicode 14) may split differently; the transformers-
// level clean_up_tokenization_spaces is not applied on decode; only BPE models
// load (not Unigram, WordPiece or WordLevel); truncation and padding are
// ignored.
//
// Thread-safety: a Tokenizer is immutable after loading (its merge cache is
// internally locked) and may be shared by any number of threads. A
// StreamDecoder belongs to one stream and is not thread-safe; it must not
// outlive its Tokenizer.
#ifndef MOE_GATEWAY_TOKENIZER_TOKENIZER_H_
#define MOE_GATEWAY_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gateway/tokenizer/added_vocabulary.h"
#include "gateway/tokenizer/bpe_model.h"
#include "gateway/tokenizer/decoder.h"
#include "gateway/tokenizer/normalizer.h"
#include "gateway/tokenizer/post_processor.h"
#include "gateway/tokenizer/pre_tokenizer.h"

namespace moe::tokenizer {

struct EncodeOptions {
  // Wrap the ids in the post-processor's special tokens (e.g. Mistral's <s>).
  bool add_special_tokens = false;
  // Recognise special tokens written in the text (e.g. "<|im_start|>"). Off
  // for untrusted user text: they are then encoded as plain text.
  bool allow_special = false;
};

class Tokenizer {
 public:
  // `json` is the content of a tokenizer.json; `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(absl::string_view json, absl::string_view source);
  // DIR/tokenizer.json or DIR/tokenizer.json.gz (+ DIR/tokenizer_config.json
  // if present, for the bos/eos/pad token names).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(const std::string& dir);

  // INVALID_ARGUMENT when `text` is not valid UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text, const EncodeOptions& options) const;
  // INVALID_ARGUMENT naming the first id that is not in the vocabulary.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const;

  int64_t vocab_size() const;  // max id + 1 over vocab and added tokens
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  absl::StatusOr<std::string> IdToToken(int32_t id) const;
  bool IsSpecial(int32_t id) const;

  // From tokenizer_config.json (nullopt without it, or when the token is not
  // set or not in the vocabulary).
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }

 private:
  friend class StreamDecoder;
  Tokenizer() = default;
  // Reads the bos/eos/pad token names of a tokenizer_config.json (loading only).
  absl::Status ApplyConfig(absl::string_view config_json, absl::string_view source);
  // The token string of `id` as the decoder sees it, or an error naming it.
  absl::StatusOr<const std::string*> TokenForDecode(int32_t id) const;
  absl::Status EncodeText(absl::string_view text, bool at_input_start, const EncodeOptions& options,
                          std::vector<int32_t>* ids) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  DecoderChain decoder_;
  AddedVocabulary added_;
  int64_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
};

// Streaming detokenizer: fed one id at a time, returns the text that became
// final. Deltas never end inside a UTF-8 character, and their concatenation
// (with Finish) equals Tokenizer::Decode of all the ids.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer* tokenizer, bool skip_special_tokens);
  ~StreamDecoder();
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;

  // INVALID_ARGUMENT naming `id` when it is outside the vocabulary (the
  // stream is unchanged then).
  absl::StatusOr<std::string> Push(int32_t id);
  // The rest (e.g. an incomplete character at the end becomes U+FFFD).
  std::string Finish();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::unique_ptr<DecodePipeline> pipeline_;
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_TOKENIZER_H_
