#include "tools/loadgen/sse.h"

#include "absl/strings/match.h"

namespace moe::loadgen {

void SseParser::Feed(absl::string_view bytes) {
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      Line(line_);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
}

void SseParser::Finish() {
  if (!line_.empty()) Line(line_);
  line_.clear();
  Line("");
}

void SseParser::Line(absl::string_view line) {
  if (line.empty()) {
    if (has_data_) on_event_(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (!absl::StartsWith(line, "data")) return;  // comment or another field
  absl::string_view value = line.substr(4);
  if (!value.empty() && value[0] != ':') return;  // a field named "data..." but longer
  if (!value.empty()) value.remove_prefix(1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (has_data_) data_.push_back('\n');
  data_.append(value.data(), value.size());
  has_data_ = true;
}

}  // namespace moe::loadgen
