// What moe-loadgen sends and what it measures for each request, and the
// interface a transport (gRPC, HTTP) implements.
//
// Times in a RequestRecord are seconds on std::chrono::steady_clock, relative
// to the run's origin (Backend::Start receives it); latencies are seconds.
#ifndef MOE_TOOLS_LOADGEN_REQUEST_H_
#define MOE_TOOLS_LOADGEN_REQUEST_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moe::loadgen {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point origin, Clock::time_point t) {
  return std::chrono::duration<double>(t - origin).count();
}

// One request to send. Exactly one of `text` / `token_ids` is the prompt.
struct RequestSpec {
  int64_t index = 0;                // position in the run (warm-up requests count too)
  bool warmup = false;              // excluded from the statistics
  std::string text;                 // text prompt (JSONL workloads)
  std::vector<uint32_t> token_ids;  // token-id prompt (synthetic workloads)
  int max_tokens = 0;               // tokens to generate
  bool ignore_eos = true;           // so that outputs have the requested length
  double temperature = 0;           // 0: greedy
  int64_t timeout_ms = 300000;      // deadline of the whole request
  double scheduled_s = 0;           // planned arrival time (open loop) or issue time (closed loop)
};

// A response message that carried generated text or tokens.
struct TokenEvent {
  double time_s = 0;  // when the client received it
  int tokens = 0;     // tokens it carried (HTTP chunks: 1)
};

// What one request did, as the client saw it.
struct RequestRecord {
  int64_t index = 0;
  bool warmup = false;
  bool ok = false;
  // "OK" or why it failed: a gRPC status code name ("UNAVAILABLE"), "HTTP 503",
  // "TRANSPORT Connection" (no HTTP response), "INCOMPLETE" (the stream ended
  // without a finish reason), "STREAM_ERROR" (an error object in the SSE stream).
  std::string status = "OK";
  std::string error_message;
  double scheduled_s = 0;  // see RequestSpec::scheduled_s
  double sent_s = 0;       // when the transport sent it (latencies start here)
  double first_token_s = -1;
  double done_s = 0;
  int prompt_tokens = 0;  // from the server's usage report, else the spec's length
  int output_tokens = 0;  // from the server's usage report, else counted
  std::vector<TokenEvent> events;

  double ttft_s() const { return first_token_s - sent_s; }
  double e2e_s() const { return done_s - sent_s; }
  // (e2e - ttft) / (output_tokens - 1); negative when undefined (< 2 tokens).
  double tpot_s() const {
    return output_tokens > 1 ? (done_s - first_token_s) / (output_tokens - 1) : -1;
  }
};

// A transport. Start() returns at once (it may queue); `done` runs exactly
// once per request, on a transport thread, and must not block.
// Implementations are thread-safe.
class Backend {
 public:
  using DoneCallback = std::function<void(RequestRecord)>;
  virtual ~Backend() = default;
  virtual void Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) = 0;
  // "grpc 127.0.0.1:50051", "http http://127.0.0.1:8000/v1/completions".
  virtual std::string Describe() const = 0;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_REQUEST_H_
