#include "gateway/stop_matcher.h"

#include <algorithm>

namespace moe {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) hold_ = std::max(hold_, s.empty() ? 0 : s.size() - 1);
}

std::string StopMatcher::Push(const std::string& delta) {
  if (matched_) return "";
  pending_ += delta;
  // The earliest match wins; at equal positions the longer stop string.
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    const size_t pos = pending_.find(s);
    if (pos != std::string::npos && (pos < best || (pos == best && s.size() > matched_stop_.size()))) {
      best = pos;
      matched_stop_ = s;
    }
  }
  if (best != std::string::npos) {
    matched_ = true;
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }
  if (pending_.size() <= hold_) return "";
  size_t cut = pending_.size() - hold_;
  // Never cut inside a UTF-8 character: back up over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(pending_[cut]) & 0xC0) == 0x80) --cut;
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string StopMatcher::Finish() {
  std::string out = matched_ ? "" : pending_;
  pending_.clear();
  return out;
}

}  // namespace moe
