// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): the
// vocabulary, the merge ranks, and the merging of one pre-tokenized word into
// token ids. Handles merges written as "a b" or ["a", "b"], byte_fallback
// (<0xNN> tokens), unk_token with fuse_unk, ignore_merges,
// continuing_subword_prefix and end_of_word_suffix. Dropout is not applied
// (inference never uses it).
//
// Thread-safety: immutable after FromJson except for the internal merge
// cache, which is guarded by a mutex; Tokenize may run on many threads.
#ifndef MOE_GATEWAY_TOKENIZER_BPE_MODEL_H_
#define MOE_GATEWAY_TOKENIZER_BPE_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

class BpeModel {
 public:
  // `j` is the "model" object; `where` names it in errors ("model").
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& j, absl::string_view where);

  // Appends the ids of `word` (one pre-token, already byte-level mapped
  // where the tokenizer does that) to *ids.
  absl::Status Tokenize(absl::string_view word, std::vector<int32_t>* ids) const;
  // The same for every word in turn; looks up the merge cache under one lock
  // per run of short words instead of one per word.
  absl::Status TokenizeWords(absl::Span<const absl::string_view> words, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // nullptr when no vocabulary entry has this id.
  const std::string* IdToToken(int32_t id) const;
  // Largest id + 1 (0 for an empty vocabulary).
  int64_t id_bound() const { return static_cast<int64_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  BpeModel() = default;
  absl::Status LoadVocab(const nlohmann::json& vocab, absl::string_view where);
  absl::Status LoadMerges(const nlohmann::json& merges, absl::string_view where);
  // The initial symbols of `word` (characters, byte fallbacks, unknowns).
  absl::Status InitialSymbols(absl::string_view word, std::vector<int32_t>* symbols) const;
  // Merges the symbols ids[begin, end) in place.
  void MergeAll(std::vector<int32_t>* ids, size_t begin) const;
  // InitialSymbols + MergeAll, appended to *ids (no cache).
  absl::Status TokenizeUncached(absl::string_view word, std::vector<int32_t>* ids) const;
  // TokenizeWords; `cut_long_words`: cut long words at "▁" first (see
  // cut_before_metaspace_).
  absl::Status TokenizeWordsImpl(absl::Span<const absl::string_view> words, bool cut_long_words,
                                 std::vector<int32_t>* ids) const;
  // ignore_merges: a word that is a token is that token. False when not.
  bool AppendWholeWord(absl::string_view word, std::vector<int32_t>* ids) const;
  static bool Cacheable(absl::string_view word) { return !word.empty() && word.size() <= kMaxCachedWordBytes; }

  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::optional<std::string> unk_token_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // Some merge joins a token that does not end in the SentencePiece space
  // "▁" to one that starts with it (set by LoadMerges).
  bool merge_joins_at_metaspace_ = false;
  // A long word (SentencePiece-style models have no pre-tokenizer: the whole
  // text is one word) may be cut before every "▁" that follows another
  // character, and the pieces merged on their own (and cached): no merge can
  // join across such a cut, so the result is the same. Only when no merge
  // crosses there, "▁" is a token, the unk token does not end in "▁", and no
  // prefix, suffix or ignore_merges makes the result depend on where a word
  // starts or ends.
  bool cut_before_metaspace_ = false;
  int32_t byte_tokens_[256];  // id of "<0xNN>", -1 when absent (byte_fallback)

  // Words already merged: the reference keeps such a cache too. Bounded:
  // once full it stops growing.
  static constexpr size_t kCacheCapacity = 20000;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_BPE_MODEL_H_
