// Incremental parser of a text/event-stream body (the subset OpenAI-style
// streaming uses): "data:" fields joined by '\n' form an event, dispatched at
// a blank line; comments (":") and other fields are ignored; lines end with
// "\n", "\r\n" or "\r", and may arrive split across Feed calls.
// Not thread-safe (one per response).
#ifndef MOE_TOOLS_LOADGEN_SSE_H_
#define MOE_TOOLS_LOADGEN_SSE_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace moe::loadgen {

class SseParser {
 public:
  using EventCallback = std::function<void(const std::string& data)>;
  explicit SseParser(EventCallback on_event) : on_event_(std::move(on_event)) {}

  void Feed(absl::string_view bytes);
  // The body ended: dispatches an event that lacked its closing blank line.
  void Finish();

 private:
  void Line(absl::string_view line);

  EventCallback on_event_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte was '\r' (a following '\n' belongs to it)
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_SSE_H_
