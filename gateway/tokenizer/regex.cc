#include "gateway/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/unicode.h"

namespace moe::tokenizer {
namespace {

std::string ErrorText(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? absl::StrCat("PCRE2 error ", code) : std::string(reinterpret_cast<const char*>(buf), n);
}

// Per-thread match state, reused across calls and patterns: one ovector pair
// is all FindAll reads, and a JIT stack larger than the 32 KiB default keeps
// backtracking patterns such as \s+(?!\S) working on long inputs.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = [this] {
    pcre2_match_context* c = pcre2_match_context_create(nullptr);
    if (c != nullptr && jit_stack != nullptr) pcre2_jit_stack_assign(c, nullptr, jit_stack);
    return c;
  }();
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(absl::string_view pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("regex '", pattern, "' does not compile: ", ErrorText(error), " at offset ", offset));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // interpreted matching when JIT is unavailable
  return std::unique_ptr<Regex>(new Regex(code, std::string(pattern)));
}

Regex::~Regex() { pcre2_code_free(code_); }

absl::Status Regex::FindAll(absl::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const {
  ThreadMatchState& state = MatchState();
  if (state.data == nullptr) return absl::ResourceExhaustedError("regex: cannot allocate match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  uint32_t options = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code_, subject, text.size(), start, options | PCRE2_NO_UTF_CHECK, state.data,
                               state.context);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (options == 0) break;
      // No non-empty match here after an empty one: step over one character.
      options = 0;
      if (start >= text.size()) break;
      start += static_cast<size_t>(Utf8SequenceLength(static_cast<unsigned char>(text[start])));
      continue;
    }
    if (rc < 0) {
      return absl::ResourceExhaustedError(absl::StrCat("regex '", pattern_, "' failed on a ", text.size(),
                                                       "-byte input: ", ErrorText(rc)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    matches->emplace_back(ov[0], ov[1]);
    start = ov[1];
    // After an empty match, look for a non-empty one at the same place first.
    options = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<MatchPattern> MatchPattern::FromJson(const nlohmann::json& j, absl::string_view where) {
  MatchPattern p;
  if (const Json* s = FindField(j, "String"); s != nullptr && s->is_string()) {
    p.literal_ = s->get<std::string>();
    return p;
  }
  if (const Json* r = FindField(j, "Regex"); r != nullptr && r->is_string()) {
    auto regex = Regex::Compile(r->get<std::string>());
    if (!regex.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", regex.status().message()));
    p.regex_ = std::move(*regex);
    return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(where, " must be {\"String\": ...} or {\"Regex\": ...}"));
}

MatchPattern MatchPattern::Literal(std::string literal) {
  MatchPattern p;
  p.literal_ = std::move(literal);
  return p;
}

absl::Status MatchPattern::FindAll(absl::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const {
  if (regex_ != nullptr) return regex_->FindAll(text, matches);
  if (literal_.empty()) return absl::OkStatus();
  for (size_t pos = text.find(literal_); pos != absl::string_view::npos; pos = text.find(literal_, pos)) {
    matches->emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MatchPattern::ReplaceAll(absl::string_view text, absl::string_view content) const {
  std::vector<std::pair<size_t, size_t>> matches;
  if (absl::Status s = FindAll(text, &matches); !s.ok()) return s;
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    out.append(text.data() + prev, b - prev);
    out.append(content.data(), content.size());
    prev = e;
  }
  out.append(text.data() + prev, text.size() - prev);
  return out;
}

}  // namespace moe::tokenizer
