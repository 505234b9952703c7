#include "gateway/tokenizer/decoder.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/regex.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

// Base of the stages that need each token whole: collects the pieces of a
// token and hands the complete token to OnToken.
class WholeTokenStage : public DecodeStage {
 public:
  explicit WholeTokenStage(DecodeStage* next) : next_(next) {}
  void Push(absl::string_view text, bool begins_token, bool ends_token) final {
    if (begins_token) CloseToken();
    if (begins_token && ends_token) {
      OnToken(text);
      return;
    }
    buffer_.append(text.data(), text.size());
    open_ = true;
    if (ends_token) CloseToken();
  }
  void Finish() final {
    CloseToken();
    OnFinish();
    next_->Finish();
  }

 protected:
  virtual void OnToken(absl::string_view token) = 0;
  virtual void OnFinish() {}
  // Sends a whole token down the chain.
  void Emit(absl::string_view token) { next_->Push(token, /*begins_token=*/true, /*ends_token=*/true); }
  DecodeStage* next_;

 private:
  void CloseToken() {
    if (!open_) return;
    open_ = false;
    const std::string token = std::move(buffer_);
    buffer_.clear();
    OnToken(token);
  }
  std::string buffer_;
  bool open_ = false;
};

// ByteLevel: every token's characters back to bytes (a token with a character
// outside the byte map is taken as its UTF-8 bytes), all tokens joined into
// ONE string and decoded lossily. Emits complete characters as soon as they
// are; an incomplete tail waits for more bytes.
class ByteLevelStage : public WholeTokenStage {
 public:
  using WholeTokenStage::WholeTokenStage;

 protected:
  void OnToken(absl::string_view token) override {
    const size_t old_size = pending_.size();
    bool mapped = true;
    for (size_t i = 0; i < token.size() && mapped;) {
      const int b = CodepointToByte(NextCodepoint(token, &i));
      if (b < 0) {
        mapped = false;
      } else {
        pending_.push_back(static_cast<char>(b));
      }
    }
    if (!mapped) {
      pending_.resize(old_size);
      pending_.append(token.data(), token.size());
    }
    std::string out;
    const size_t used = AppendUtf8Lossy(pending_, /*final_chunk=*/false, &out);
    pending_.erase(0, used);
    if (!out.empty() || !started_) {
      next_->Push(out, /*begins_token=*/!started_, /*ends_token=*/false);
      started_ = true;
    }
  }
  void OnFinish() override {
    std::string out;
    AppendUtf8Lossy(pending_, /*final_chunk=*/true, &out);
    pending_.clear();
    next_->Push(out, /*begins_token=*/!started_, /*ends_token=*/true);
  }

 private:
  std::string pending_;  // bytes of an incomplete character
  bool started_ = false;
};

// ByteFallback: a run of <0xNN> tokens becomes the string of its bytes, or
// one U+FFFD per byte when the run is not valid UTF-8 (so a run is final
// only when a token that is not a byte token ends it).
class ByteFallbackStage : public WholeTokenStage {
 public:
  using WholeTokenStage::WholeTokenStage;

 protected:
  void OnToken(absl::string_view token) override {
    int byte = -1;
    if (token.size() == 6 && absl::StartsWith(token, "<0x") && token[5] == '>') byte = ParseHexByte(token.substr(3, 2));
    if (byte >= 0) {
      run_.push_back(static_cast<char>(byte));
      return;
    }
    FlushRun();
    Emit(token);
  }
  void OnFinish() override { FlushRun(); }

 private:
  static int ParseHexByte(absl::string_view hex) {
    int v = 0;
    for (char c : hex) {
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }
  void FlushRun() {
    if (run_.empty()) return;
    if (ValidateUtf8(run_, "").ok()) {
      Emit(run_);
    } else {
      for (size_t i = 0; i < run_.size(); ++i) Emit(kReplacementChar);
    }
    run_.clear();
  }
  std::string run_;
};

// Fuse: all tokens become one.
class FuseStage : public DecodeStage {
 public:
  explicit FuseStage(DecodeStage* next) : next_(next) {}
  void Push(absl::string_view text, bool, bool) override {
    next_->Push(text, /*begins_token=*/!started_, /*ends_token=*/false);
    started_ = true;
  }
  void Finish() override {
    next_->Push("", /*begins_token=*/!started_, /*ends_token=*/true);
    next_->Finish();
  }

 private:
  DecodeStage* next_;
  bool started_ = false;
};

// Strip: removes up to `start` leading and `stop` trailing `content`
// characters of every token. Trailing candidates wait until the token goes
// on with something else or ends.
class StripStage : public DecodeStage {
 public:
  StripStage(DecodeStage* next, std::string content, int start, int stop)
      : next_(next), content_(std::move(content)), start_(start), stop_(stop) {}
  void Push(absl::string_view text, bool begins_token, bool ends_token) override {
    if (begins_token || !in_token_) {
      EndToken();
      in_token_ = true;
      lead_left_ = start_;
      out_started_ = false;
    }
    std::string out;
    for (size_t i = 0; i < text.size();) {
      const size_t b = i;
      i += static_cast<size_t>(Utf8SequenceLength(static_cast<unsigned char>(text[b])));
      const absl::string_view c = text.substr(b, i - b);
      const bool is_content = c == content_;
      if (lead_left_ > 0 && is_content) {
        --lead_left_;
        continue;
      }
      lead_left_ = 0;
      if (is_content && stop_ > 0) {
        held_.append(c.data(), c.size());
        if (++held_count_ > stop_) {  // more than `stop` of them: the first is kept
          out.append(held_, 0, content_.size());
          held_.erase(0, content_.size());
          --held_count_;
        }
        continue;
      }
      out += held_;
      held_.clear();
      held_count_ = 0;
      out.append(c.data(), c.size());
    }
    if (!out.empty() || !out_started_) {
      next_->Push(out, /*begins_token=*/!out_started_, /*ends_token=*/false);
      out_started_ = true;
    }
    if (ends_token) EndToken();
  }
  void Finish() override {
    EndToken();
    next_->Finish();
  }

 private:
  void EndToken() {
    if (!in_token_) return;
    held_.clear();  // at most `stop` trailing content characters: dropped
    held_count_ = 0;
    next_->Push("", /*begins_token=*/!out_started_, /*ends_token=*/true);
    in_token_ = false;
  }
  DecodeStage* next_;
  std::string content_;
  int start_, stop_;
  bool in_token_ = false;
  bool out_started_ = false;
  int lead_left_ = 0;
  std::string held_;
  int held_count_ = 0;
};

// Replace: every match of the pattern in a token becomes `content`.
class ReplaceStage : public WholeTokenStage {
 public:
  ReplaceStage(DecodeStage* next, absl::Status* status, MatchPattern pattern, std::string content)
      : WholeTokenStage(next), status_(status), pattern_(std::move(pattern)), content_(std::move(content)) {}

 protected:
  void OnToken(absl::string_view token) override {
    if (pattern_.is_literal()) {
      Emit(absl::StrReplaceAll(token, {{pattern_.literal(), content_}}));
      return;
    }
    absl::StatusOr<std::string> replaced = pattern_.ReplaceAll(token, content_);
    if (!replaced.ok()) {
      if (status_->ok()) *status_ = replaced.status();
      Emit(token);
      return;
    }
    Emit(*replaced);
  }

 private:
  absl::Status* status_;
  MatchPattern pattern_;
  std::string content_;
};

// Metaspace: the replacement character becomes a space, except in the first
// token (when a prefix was prepended on encode), where it is dropped.
class MetaspaceStage : public DecodeStage {
 public:
  MetaspaceStage(DecodeStage* next, std::string replacement, bool prepends)
      : next_(next), replacement_(std::move(replacement)), prepends_(prepends) {}
  void Push(absl::string_view text, bool begins_token, bool ends_token) override {
    if (begins_token) ++token_index_;
    const bool drop = token_index_ == 1 && prepends_;
    next_->Push(absl::StrReplaceAll(text, {{replacement_, drop ? "" : " "}}), begins_token, ends_token);
  }
  void Finish() override { next_->Finish(); }

 private:
  DecodeStage* next_;
  std::string replacement_;
  bool prepends_;
  int64_t token_index_ = 0;
};

// BPEDecoder: the end-of-word suffix becomes a space, or nothing in the last
// token; so each token waits for the next one.
class BpeSuffixStage : public WholeTokenStage {
 public:
  BpeSuffixStage(DecodeStage* next, std::string suffix) : WholeTokenStage(next), suffix_(std::move(suffix)) {}

 protected:
  void OnToken(absl::string_view token) override {
    if (held_.has_value()) Emit(absl::StrReplaceAll(*held_, {{suffix_, " "}}));
    held_ = std::string(token);
  }
  void OnFinish() override {
    if (held_.has_value()) Emit(absl::StrReplaceAll(*held_, {{suffix_, ""}}));
    held_.reset();
  }

 private:
  std::string suffix_;
  std::optional<std::string> held_;
};

// WordPiece: tokens after the first lose their continuation prefix or get a
// space in front; optional clean-up of spaces before punctuation.
class WordPieceStage : public WholeTokenStage {
 public:
  WordPieceStage(DecodeStage* next, std::string prefix, bool cleanup)
      : WholeTokenStage(next), prefix_(std::move(prefix)), cleanup_(cleanup) {}

 protected:
  void OnToken(absl::string_view token) override {
    std::string t(token);
    if (index_++ != 0) {
      if (absl::StartsWith(t, prefix_)) {
        t.erase(0, prefix_.size());
      } else {
        t = absl::StrCat(" ", t);
      }
    }
    if (cleanup_) {
      t = absl::StrReplaceAll(t, {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                  {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
                                  {" 've", "'ve"}, {" 're", "'re"}});
    }
    Emit(t);
  }

 private:
  std::string prefix_;
  bool cleanup_;
  int64_t index_ = 0;
};

// No decoder: tokens joined with single spaces.
class JoinWithSpacesStage : public WholeTokenStage {
 public:
  using WholeTokenStage::WholeTokenStage;

 protected:
  void OnToken(absl::string_view token) override {
    next_->Push(started_ ? absl::StrCat(" ", token) : std::string(token), !started_, false);
    started_ = true;
  }
  void OnFinish() override { next_->Push("", !started_, true); }

 private:
  bool started_ = false;
};

}  // namespace

class DecodePipeline::Sink : public DecodeStage {
 public:
  explicit Sink(std::string* out) : out_(out) {}
  void Push(absl::string_view text, bool, bool) override { out_->append(text.data(), text.size()); }
  void Finish() override {}

 private:
  std::string* out_;
};

DecodePipeline::DecodePipeline() : sink_(std::make_unique<Sink>(&output_)) {}

void DecodePipeline::PushToken(absl::string_view token) {
  DecodeStage* first = stages_.empty() ? sink_.get() : stages_.back().get();
  first->Push(token, /*begins_token=*/true, /*ends_token=*/true);
}

void DecodePipeline::Finish() {
  DecodeStage* first = stages_.empty() ? sink_.get() : stages_.back().get();
  first->Finish();
}

std::string DecodePipeline::TakeOutput() { return std::exchange(output_, std::string()); }

std::unique_ptr<DecodePipeline> DecoderChain::NewPipeline() const {
  std::unique_ptr<DecodePipeline> p(new DecodePipeline());
  DecodeStage* next = p->sink_.get();
  for (auto it = factories_.rbegin(); it != factories_.rend(); ++it) {
    p->stages_.push_back((*it)(next, &p->status_));
    next = p->stages_.back().get();
  }
  return p;
}

absl::StatusOr<DecoderChain> DecoderChain::FromJson(const Json& j, absl::string_view where) {
  DecoderChain chain;
  if (j.is_null()) {
    chain.factories_.push_back(
        [](DecodeStage* next, absl::Status*) { return std::make_unique<JoinWithSpacesStage>(next); });
    return chain;
  }
  RETURN_IF_ERROR(chain.Add(j, where));
  return chain;
}

absl::Status DecoderChain::Add(const Json& j, absl::string_view where) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, where));
  if (type == "Sequence") {
    const Json* list = FindField(j, "decoders");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".decoders is missing or not an array"));
    }
    for (size_t i = 0; i < list->size(); ++i) RETURN_IF_ERROR(Add((*list)[i], absl::StrCat(where, ".decoders[", i, "]")));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    factories_.push_back([](DecodeStage* next, absl::Status*) { return std::make_unique<ByteLevelStage>(next); });
  } else if (type == "ByteFallback") {
    factories_.push_back([](DecodeStage* next, absl::Status*) { return std::make_unique<ByteFallbackStage>(next); });
  } else if (type == "Fuse") {
    factories_.push_back([](DecodeStage* next, absl::Status*) { return std::make_unique<FuseStage>(next); });
  } else if (type == "Strip") {
    ASSIGN_OR_RETURN(std::string content, GetString(j, "content", where));
    RETURN_IF_ERROR(ValidateUtf8(content, JsonPath(where, "content")));
    if (CodepointCount(content) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".content must be one character"));
    }
    ASSIGN_OR_RETURN(const int64_t start, GetIntOr(j, "start", 0, where));
    ASSIGN_OR_RETURN(const int64_t stop, GetIntOr(j, "stop", 0, where));
    if (start < 0 || stop < 0 || start > 1000000 || stop > 1000000) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": start and stop must be in [0, 1e6]"));
    }
    factories_.push_back([content, start, stop](DecodeStage* next, absl::Status*) {
      return std::make_unique<StripStage>(next, content, static_cast<int>(start), static_cast<int>(stop));
    });
  } else if (type == "Replace") {
    const Json* pattern = FindField(j, "pattern");
    if (pattern == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ".pattern is missing"));
    ASSIGN_OR_RETURN(MatchPattern p, MatchPattern::FromJson(*pattern, JsonPath(where, "pattern")));
    ASSIGN_OR_RETURN(std::string content, GetString(j, "content", where));
    factories_.push_back([p, content](DecodeStage* next, absl::Status* status) {
      return std::make_unique<ReplaceStage>(next, status, p, content);
    });
  } else if (type == "Metaspace") {
    ASSIGN_OR_RETURN(std::string replacement, GetStringOr(j, "replacement", "\xE2\x96\x81", where));
    RETURN_IF_ERROR(ValidateUtf8(replacement, JsonPath(where, "replacement")));
    if (CodepointCount(replacement) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".replacement must be one character"));
    }
    bool prepends = true;
    if (FindField(j, "prepend_scheme") != nullptr) {
      ASSIGN_OR_RETURN(const std::string scheme, GetString(j, "prepend_scheme", where));
      if (scheme != "always" && scheme != "first" && scheme != "never") {
        return absl::InvalidArgumentError(absl::StrCat(where, ".prepend_scheme: unknown value '", scheme, "'"));
      }
      prepends = scheme != "never";
    } else {
      ASSIGN_OR_RETURN(prepends, GetBoolOr(j, "add_prefix_space", true, where));
    }
    factories_.push_back([replacement, prepends](DecodeStage* next, absl::Status*) {
      return std::make_unique<MetaspaceStage>(next, replacement, prepends);
    });
  } else if (type == "BPEDecoder") {
    ASSIGN_OR_RETURN(std::string suffix, GetStringOr(j, "suffix", "</w>", where));
    factories_.push_back([suffix](DecodeStage* next, absl::Status*) {
      return std::make_unique<BpeSuffixStage>(next, suffix);
    });
  } else if (type == "WordPiece") {
    ASSIGN_OR_RETURN(std::string prefix, GetStringOr(j, "prefix", "##", where));
    ASSIGN_OR_RETURN(const bool cleanup, GetBoolOr(j, "cleanup", true, where));
    factories_.push_back([prefix, cleanup](DecodeStage* next, absl::Status*) {
      return std::make_unique<WordPieceStage>(next, prefix, cleanup);
    });
  } else {
    return Unsupported(where, type);
  }
  return absl::OkStatus();
}

}  // namespace moe::tokenizer
