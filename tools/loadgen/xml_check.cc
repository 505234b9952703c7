#include "tools/loadgen/xml_check.h"

#include <cctype>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"

namespace moe::loadgen {

namespace {

bool NameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool NameChar(char c) {
  return NameStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

class Checker {
 public:
  explicit Checker(const std::string& text) : s_(text) {}

  absl::Status Run() {
    if (s_.compare(0, 5, "<?xml") == 0) {
      const size_t end = s_.find("?>");
      if (end == std::string::npos) return Error("unterminated XML declaration");
      i_ = end + 2;
    }
    bool root_seen = false;
    std::vector<std::string> open;
    while (i_ < s_.size()) {
      if (s_[i_] != '<') {
        if (open.empty() && !std::isspace(static_cast<unsigned char>(s_[i_]))) return Error("text outside the root");
        if (s_[i_] == '&') {
          if (auto st = Entity(); !st.ok()) return st;
          continue;
        }
        if (s_[i_] == '>' && open.empty()) return Error("stray '>'");
        ++i_;
        continue;
      }
      if (s_.compare(i_, 4, "<!--") == 0) {
        const size_t end = s_.find("-->", i_ + 4);
        if (end == std::string::npos) return Error("unterminated comment");
        i_ = end + 3;
        continue;
      }
      if (s_.compare(i_, 2, "</") == 0) {
        i_ += 2;
        const std::string name = Name();
        if (name.empty()) return Error("bad closing tag");
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != '>') return Error("bad closing tag");
        ++i_;
        if (open.empty() || open.back() != name) return Error(absl::StrCat("</", name, "> does not close the open tag"));
        open.pop_back();
        continue;
      }
      ++i_;
      const std::string name = Name();
      if (name.empty()) return Error("bad tag name");
      if (open.empty()) {
        if (root_seen) return Error("a second root element");
        root_seen = true;
      }
      std::set<std::string> attributes;
      for (;;) {
        const size_t before = i_;
        SkipSpace();
        if (i_ >= s_.size()) return Error("unterminated tag");
        if (s_[i_] == '>') {
          ++i_;
          open.push_back(name);
          break;
        }
        if (s_.compare(i_, 2, "/>") == 0) {
          i_ += 2;
          break;
        }
        if (i_ == before) return Error("attributes must be separated by spaces");
        const std::string attribute = Name();
        if (attribute.empty()) return Error("bad attribute name");
        if (!attributes.insert(attribute).second) return Error(absl::StrCat("attribute '", attribute, "' repeated"));
        SkipSpace();
        if (i_ >= s_.size() || s_[i_] != '=') return Error("attribute without '='");
        ++i_;
        SkipSpace();
        if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) return Error("unquoted attribute value");
        const char quote = s_[i_++];
        while (i_ < s_.size() && s_[i_] != quote) {
          if (s_[i_] == '<') return Error("'<' in an attribute value");
          if (s_[i_] == '&') {
            if (auto st = Entity(); !st.ok()) return st;
          } else {
            ++i_;
          }
        }
        if (i_ >= s_.size()) return Error("unterminated attribute value");
        ++i_;
      }
    }
    if (!open.empty()) return Error(absl::StrCat("<", open.back(), "> is never closed"));
    if (!root_seen) return Error("no root element");
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("XML at byte ", i_, ": ", what));
  }
  std::string Name() {
    const size_t start = i_;
    if (i_ < s_.size() && NameStart(s_[i_])) {
      ++i_;
      while (i_ < s_.size() && NameChar(s_[i_])) ++i_;
    }
    return s_.substr(start, i_ - start);
  }
  void SkipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  absl::Status Entity() {
    const size_t end = s_.find(';', i_);
    if (end == std::string::npos || end - i_ > 10) return Error("bare '&'");
    const std::string e = s_.substr(i_ + 1, end - i_ - 1);
    const bool numeric = e.size() > 1 && e[0] == '#';
    if (!numeric && e != "amp" && e != "lt" && e != "gt" && e != "quot" && e != "apos") {
      return Error(absl::StrCat("unknown entity &", e, ";"));
    }
    i_ = end + 1;
    return absl::OkStatus();
  }

  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

absl::Status CheckWellFormedXml(const std::string& text) { return Checker(text).Run(); }

}  // namespace moe::loadgen
