#include "tools/tiny_tokenizer.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {
namespace {

using ordered_json = nlohmann::ordered_json;

void NewLine(int indent, int level, std::string* out) {
  if (indent < 0) return;
  *out += '\n';
  out->append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
}

// One JSON string literal, escaped as Python's ensure_ascii=False escapes it.
std::string Quoted(const std::string& s) { return ordered_json(s).dump(); }

void DumpTo(const ordered_json& v, int indent, int level, std::string* out) {
  const char* item_sep = indent < 0 ? ", " : ",";
  if (v.is_object() || v.is_array()) {
    if (v.empty()) {
      *out += v.is_object() ? "{}" : "[]";
      return;
    }
    *out += v.is_object() ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) *out += item_sep;
      first = false;
      NewLine(indent, level + 1, out);
      if (v.is_object()) absl::StrAppend(out, Quoted(it.key()), ": ");
      DumpTo(it.value(), indent, level + 1, out);
    }
    NewLine(indent, level, out);
    *out += v.is_object() ? '}' : ']';
    return;
  }
  *out += v.dump();
}

// What the streaming parse pulls out of model.vocab and model.merges. Those
// two are the only big parts of the file; they are collected here and dropped
// from the parsed tree (an ordered_json object of 150k keys would take
// quadratic time to build).
struct BpeTables {
  std::vector<std::pair<std::string, int64_t>> vocab;  // file order
  std::vector<std::pair<std::string, std::string>> merges;
  bool merges_as_strings = false;  // "a b" rather than ["a", "b"]
  std::string error;               // first problem seen, if any
};

class BpeCollector {
 public:
  explicit BpeCollector(BpeTables* tables) : t_(tables) {}

  // nlohmann parser callback. `depth` counts the containers open around the
  // event: a key of the top-level object has depth 1, a key of "model" depth 2,
  // a vocab entry depth 3, a string inside a merge pair depth 4.
  bool operator()(int depth, ordered_json::parse_event_t event, ordered_json& parsed) {
    using E = ordered_json::parse_event_t;
    switch (event) {
      case E::key:
        if (depth >= 1 && depth <= 2) {
          keys_[depth] = parsed.get<std::string>();
          return true;
        }
        if (depth == 3 && In("vocab")) {
          pending_token_ = parsed.get<std::string>();
          return false;  // drop the key (and so its value) from the tree
        }
        return true;
      case E::value:
        if (depth == 3 && In("vocab")) {
          if (!parsed.is_number_integer()) {
            Fail(absl::StrCat("model.vocab entry '", pending_token_, "' has a non-integer id"));
          } else {
            t_->vocab.emplace_back(std::move(pending_token_), parsed.get<int64_t>());
          }
          return true;  // its key was dropped, so nothing is stored
        }
        if (depth == 3 && In("merges")) {  // "a b"
          t_->merges_as_strings = true;
          const std::string* s = parsed.get_ptr<const std::string*>();
          size_t space = s == nullptr ? std::string::npos : s->find(' ');
          if (space == std::string::npos || s->find(' ', space + 1) != std::string::npos) {
            Fail(absl::StrCat("model.merges entry ", parsed.dump(),
                              " is neither \"a b\" nor [\"a\", \"b\"]"));
          } else {
            t_->merges.emplace_back(s->substr(0, space), s->substr(space + 1));
          }
          return false;
        }
        if (depth == 4 && In("merges")) {
          if (!parsed.is_string()) {
            Fail(absl::StrCat("model.merges holds a pair with a non-string part ", parsed.dump()));
          } else {
            parts_.push_back(parsed.get<std::string>());
          }
          return true;
        }
        return true;
      case E::array_start:
        if (depth == 3 && In("merges")) parts_.clear();
        return true;
      case E::array_end:
        if (depth == 3 && In("merges")) {
          if (parts_.size() != 2) {
            Fail(absl::StrCat("model.merges holds a pair with ", parts_.size(), " parts"));
          } else {
            t_->merges.emplace_back(std::move(parts_[0]), std::move(parts_[1]));
          }
          return false;  // drop the pair from the tree
        }
        return true;
      default:
        return true;
    }
  }

 private:
  bool In(std::string_view model_field) const {
    return keys_[1] == "model" && keys_[2] == model_field;
  }
  void Fail(std::string message) {
    if (t_->error.empty()) t_->error = std::move(message);
  }

  BpeTables* t_;
  std::string keys_[3];  // the current key at depth 1 and 2
  std::string pending_token_;
  std::vector<std::string> parts_;
};

absl::StatusOr<ordered_json> FindSpecialToken(const ordered_json& added_tokens,
                                              std::string_view content, int64_t id,
                                              std::string_view source) {
  for (const ordered_json& t : added_tokens) {
    auto it = t.find("content");
    if (t.is_object() && it != t.end() && it->is_string() && it->get<std::string>() == content) {
      ordered_json copy = t;
      copy["id"] = id;
      return copy;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(source), ": added_tokens has no \"", std::string(content),
      "\" (a cut tokenizer needs it)"));
}

}  // namespace

std::string DumpJsonPythonStyle(const ordered_json& value, int indent) {
  std::string out;
  DumpTo(value, indent, 0, &out);
  return out;
}

static absl::StatusOr<std::string> CutByteLevelBpeTokenizerUnchecked(std::string_view base_json,
                                                     int64_t vocab_size,
                                                     std::string_view source) {
  if (vocab_size < kMinTinyVocab) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocabulary size ", vocab_size, " is too small: a cut tokenizer needs at least ",
        kMinTinyVocab, " tokens (256 bytes + 3 special tokens)"));
  }
  const int64_t kept = vocab_size - 3;  // ids [0, kept) come from the base vocabulary
  const std::string src(source);        // absl::StrCat takes absl::string_view

  BpeTables tables;
  BpeCollector collector(&tables);  // stateful: the parser must call this one object
  ordered_json root;
  try {
    root = ordered_json::parse(
        base_json.begin(), base_json.end(),
        [&collector](int depth, ordered_json::parse_event_t event, ordered_json& parsed) {
          return collector(depth, event, parsed);
        });
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": not valid JSON: ", e.what()));
  }
  if (!tables.error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": ", tables.error));
  }
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": no \"model\" object"));
  }
  const ordered_json& model = root["model"];
  const bool is_bpe = model.contains("type") && model["type"].is_string() && model["type"] == "BPE";
  if (!is_bpe || !model.contains("vocab") ||
      !model["vocab"].is_object() || !model.contains("merges") || !model["merges"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": model is not a BPE model with a \"vocab\" object and a \"merges\" array"));
  }
  if (!root.contains("added_tokens") || !root["added_tokens"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": no \"added_tokens\" array"));
  }

  // Keep ids below `kept`; they must be exactly 0..kept-1.
  std::vector<const std::pair<std::string, int64_t>*> kept_vocab;
  std::vector<bool> seen_id(static_cast<size_t>(kept), false);
  std::unordered_set<std::string_view> kept_tokens;
  for (const auto& entry : tables.vocab) {
    if (entry.second < 0 || entry.second >= kept) continue;
    if (seen_id[static_cast<size_t>(entry.second)]) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": id ", entry.second, " appears twice in model.vocab"));
    }
    seen_id[static_cast<size_t>(entry.second)] = true;
    kept_tokens.insert(entry.first);
    kept_vocab.push_back(&entry);
  }
  if (static_cast<int64_t>(kept_vocab.size()) != kept) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": model.vocab has ", kept_vocab.size(), " distinct ids below ", kept,
        "; a vocabulary of ", vocab_size, " needs every id 0..", kept - 1,
        " (is the vocabulary larger than the base tokenizer's?)"));
  }

  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < kTinySpecialTokens.size(); ++i) {
    std::string_view content = kTinySpecialTokens[i];
    if (kept_tokens.contains(content)) {
      return absl::InvalidArgumentError(absl::StrCat(
          src, ": special token ", std::string(content), " is also a kept vocabulary entry"));
    }
    ASSIGN_OR_RETURN(ordered_json token,
                     FindSpecialToken(root["added_tokens"], content,
                                      kept + static_cast<int64_t>(i), src));
    added.push_back(std::move(token));
  }

  // Write the result, keeping the base's key order, with the tables spliced in.
  std::string out = "{";
  bool first_top = true;
  for (auto it = root.begin(); it != root.end(); ++it) {
    absl::StrAppend(&out, first_top ? "" : ", ", Quoted(it.key()), ": ");
    first_top = false;
    if (it.key() == "added_tokens") {
      out += DumpJsonPythonStyle(added);
      continue;
    }
    if (it.key() != "model") {
      out += DumpJsonPythonStyle(it.value());
      continue;
    }
    out += "{";
    bool first_field = true;
    for (auto m = it.value().begin(); m != it.value().end(); ++m) {
      absl::StrAppend(&out, first_field ? "" : ", ", Quoted(m.key()), ": ");
      first_field = false;
      if (m.key() == "vocab") {
        out += "{";
        for (size_t i = 0; i < kept_vocab.size(); ++i) {
          absl::StrAppend(&out, i ? ", " : "", Quoted(kept_vocab[i]->first), ": ",
                          kept_vocab[i]->second);
        }
        out += "}";
      } else if (m.key() == "merges") {
        out += "[";
        bool first_merge = true;
        for (const auto& [a, b] : tables.merges) {
          if (!kept_tokens.contains(a) || !kept_tokens.contains(b) ||
              !kept_tokens.contains(a + b)) {
            continue;
          }
          out += first_merge ? "" : ", ";
          first_merge = false;
          if (tables.merges_as_strings) {
            out += Quoted(a + " " + b);
          } else {
            absl::StrAppend(&out, "[", Quoted(a), ", ", Quoted(b), "]");
          }
        }
        out += "]";
      } else {
        out += DumpJsonPythonStyle(m.value());
      }
    }
    out += "}";
  }
  out += "}";
  return out;
}

std::string TinyTokenizerConfigJson() {
  ordered_json config = ordered_json::object();
  config["eos_token"] = "<|im_end|>";
  config["bos_token"] = nullptr;
  config["pad_token"] = "<|endoftext|>";
  config["chat_template"] =
      "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
      "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  return DumpJsonPythonStyle(config);
}

// Any JSON type error that slipped past the explicit checks still becomes a
// Status: malformed input must never escape as an exception.
absl::StatusOr<std::string> CutByteLevelBpeTokenizer(std::string_view base_json,
                                                     int64_t vocab_size,
                                                     std::string_view source) {
  try {
    return CutByteLevelBpeTokenizerUnchecked(base_json, vocab_size, source);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": malformed tokenizer.json: ", e.what()));
  }
}

}  // namespace moe
