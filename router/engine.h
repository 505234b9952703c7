// Engine: the router's scheduler. One engine thread owns every sequence, its
// KV cache and the forward pass; other threads submit requests and abort them
// through thread-safe calls, and receive tokens through a GenerationSink that
// the engine thread calls (sinks must not block).
//
// Each step runs, as ONE forward pass, the next token of every running
// sequence plus the prompts of newly admitted ones (iteration-level batching):
// new requests join at the next step and finished ones leave at once.
#ifndef MOE_ROUTER_ENGINE_H_
#define MOE_ROUTER_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "router/forward.h"
#include "router/generator.h"
#include "router/sampler.h"

namespace moe {

enum class FinishReason { kStop, kLength, kCancelled };

struct GenerationRequest {
  std::string request_id;
  std::vector<int32_t> prompt;
  int max_tokens = 0;  // 0: up to the context limit
  std::vector<int32_t> stop_token_ids;
  SamplingOptions sampling;
};

// Receives one request's results, on the engine thread. OnFinish is called
// exactly once, last; `status` is OK unless generation failed (then `reason`
// is meaningless and the tokens so far stand).
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void OnToken(const GeneratedToken& token) = 0;
  virtual void OnFinish(const absl::Status& status, FinishReason reason, int prompt_tokens,
                        int completion_tokens) = 0;
  // Polled by the engine thread once per step: true ends the request with
  // FinishReason::kCancelled (client cancel, deadline).
  virtual bool Cancelled() const { return false; }
};

struct EngineOptions {
  // Sequences decoded together in one step.
  int max_running_seqs = 64;
  // Upper bound on new tokens (prompt tokens plus decode tokens) in one step;
  // a single prompt longer than this still runs, alone with the decodes.
  int64_t max_batch_tokens = 4096;
  // Requests that may wait for admission; beyond it Submit fails with
  // RESOURCE_EXHAUSTED.
  int max_waiting_requests = 1024;
};

struct EngineLoad {
  int running = 0;
  int waiting = 0;
  int64_t waiting_tokens = 0;
  uint64_t steps = 0;
};

class Engine {
 public:
  // `forward` must outlive the engine; only the engine thread uses it.
  Engine(ForwardPass* forward, const ModelConfig& config, const EngineOptions& options);
  ~Engine();  // stops the thread; unfinished requests end with CANCELLED

  // Validates and queues a request. INVALID_ARGUMENT for a bad request (empty
  // prompt, ids outside the vocabulary, prompt + max_tokens past the context),
  // RESOURCE_EXHAUSTED when the waiting queue is full, UNAVAILABLE after Stop.
  absl::Status Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink);
  // Ends a request at the next step with FinishReason::kCancelled. False if unknown.
  bool Abort(const std::string& request_id);
  EngineLoad Load() const;
  void Stop();

 private:
  struct Sequence {
    GenerationRequest request;
    std::shared_ptr<GenerationSink> sink;
    std::unique_ptr<SequenceKv> kv;
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> generated;
    int32_t next_input = -1;  // last sampled token, fed at the next step
    bool prefilled = false;
  };

  void Run();
  void Step(std::vector<std::unique_ptr<Sequence>>& running);
  void Finish(Sequence& seq, const absl::Status& status, FinishReason reason);

  ForwardPass* forward_;
  const ModelConfig config_;
  const EngineOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> waiting_;  // guarded by mu_
  int64_t waiting_tokens_ = 0;                     // guarded by mu_
  std::map<std::string, int> live_ids_;            // guarded by mu_; id -> live requests
  std::vector<std::string> aborts_;                // guarded by mu_; ids to cancel
  bool stopping_ = false;                          // guarded by mu_
  std::atomic<int> running_count_{0};
  std::atomic<uint64_t> steps_{0};
  std::thread thread_;
};

}  // namespace moe

#endif  // MOE_ROUTER_ENGINE_H_
