// StopMatcher: finds stop strings in streamed text, across token boundaries.
// Text that could still be the start of a stop string is held back; when a
// stop string appears, the text is cut just before it. Deltas never split a
// UTF-8 character (input deltas are whole characters; the hold-back cut moves
// to a character boundary).
#ifndef MOE_GATEWAY_STOP_MATCHER_H_
#define MOE_GATEWAY_STOP_MATCHER_H_

#include <string>
#include <vector>

namespace moe {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds the next text delta; returns the text that is now safe to emit.
  // After a match, matched() is true and every later call returns "".
  std::string Push(const std::string& delta);
  // End of the stream: the held-back text (empty after a match).
  std::string Finish();

  bool matched() const { return matched_; }
  const std::string& matched_stop() const { return matched_stop_; }

 private:
  std::vector<std::string> stops_;
  size_t hold_ = 0;  // longest stop - 1: bytes that may start a match
  std::string pending_;
  bool matched_ = false;
  std::string matched_stop_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_STOP_MATCHER_H_
