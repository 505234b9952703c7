// Engine: the router's scheduler. One engine thread owns every sequence, the
// paged KV cache and the forward pass; other threads submit requests and abort
// them through thread-safe calls, and receive tokens through a GenerationSink
// that the engine thread calls (sinks must not block).
//
// Continuous (iteration-level) batching: each step is ONE forward pass over
// the next token of every decoding sequence plus up to max_batch_tokens of
// prompt tokens (long prompts are prefilled in chunks over several steps).
// New requests join at the next step; finished, cancelled and aborted ones
// leave at once and free their KV blocks.
//
// Scheduling policy, per step, oldest admitted first:
//   1. every running sequence gets its next chunk (1 token when decoding);
//      when the KV cache has no free block for it, the most recently admitted
//      sequence is preempted: its blocks are freed and it waits, ahead of new
//      requests, to be recomputed (prompt + tokens so far; the prefix cache
//      usually holds most of it). Nothing fails for lack of blocks unless a
//      single sequence outgrows the whole cache.
//   2. then preempted sequences, then waiting requests (FIFO) are admitted
//      while the token budget, max_running_seqs and free blocks allow, and no
//      sequence was preempted in this step. Admission first takes the longest
//      cached prefix of the sequence's tokens from the prefix cache.
// Results do not depend on the batch, the chunking, the prefix cache or
// preemption: a sequence's logits are bitwise those it gets alone.
//
// Backpressure: the waiting queue is bounded in requests and prompt tokens;
// beyond it Submit fails at once with RESOURCE_EXHAUSTED. Running plus
// preempted sequences never exceed max_running_seqs, so memory is bounded.
#ifndef MOE_ROUTER_ENGINE_H_
#define MOE_ROUTER_ENGINE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grammar/constraint.h"
#include "router/dense_device.h"
#include "router/generated_token.h"
#include "router/kv_cache.h"
#include "router/sampler.h"

namespace moe {

enum class FinishReason { kStop, kLength, kCancelled };

struct GenerationRequest {
  // The engine's key: unique for the engine's life (Engine::NewRequestId);
  // 0 at Submit means "assign one". The samples of one client request share
  // it and differ by sampling.sample_index.
  uint64_t id = 0;
  // The client's own id, for logs only: two clients may send the same one.
  std::string client_id;
  std::vector<int32_t> prompt;
  int max_tokens = 0;  // 0: up to the context limit
  std::vector<int32_t> stop_token_ids;
  SamplingOptions sampling;
  // >= 0: report the log-probability of every prompt token with this many
  // alternatives (0..20); the prompt is then computed in full (no prefix-cache
  // reuse), since cached positions have no logits.
  int prompt_logprobs = -1;
  // Past it the request ends with DEADLINE_EXCEEDED at the next step (waiting
  // or running).
  absl::Time deadline = absl::InfiniteFuture();
  // Structured output: only text the constraint allows (grammar/constraint.h);
  // the end of sequence only once it is complete. Needs
  // EngineOptions::constraints.
  grammar::ConstraintSpec constraint;
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
  // Polled by the engine thread once per step, for running and waiting
  // requests (the latter under the engine's lock: must be a cheap, non-blocking
  // read): true ends the request with FinishReason::kCancelled and frees its
  // KV blocks (client cancel, call deadline).
  virtual bool Cancelled() const { return false; }
  // The request left the waiting queue for the batch after `queue_seconds`
  // (once per request; resumptions after preemption are not reported).
  virtual void OnAdmitted(double /*queue_seconds*/) {}
  // With prompt_logprobs: one entry per prompt token, before the first token
  // (the first entry has no log-probability: 0 and no alternatives).
  virtual void OnPromptLogprobs(const std::vector<GeneratedToken>& /*prompt*/) {}
};

struct EngineOptions {
  // Compiles requests' constraints over the model's token bytes; null: the
  // model has no usable tokenizer.json, and constrained requests are refused
  // (FAILED_PRECONDITION). Not owned.
  grammar::ConstraintCompiler* constraints = nullptr;
  // Sequences decoded together in one step.
  int max_running_seqs = 64;
  // Upper bound on new tokens (decode tokens plus prompt chunks) in one step;
  // every decoding sequence gets its token, prompts share the rest.
  int64_t max_batch_tokens = 4096;
  // Requests that may wait for admission; beyond it Submit fails with
  // RESOURCE_EXHAUSTED.
  int max_waiting_requests = 1024;
  // Prompt tokens that may wait for admission, summed over waiting requests.
  int64_t max_waiting_tokens = int64_t{1} << 20;
  // The paged KV cache: block size, capacity in bytes, prefix caching.
  KvCacheOptions kv_cache;
};

struct EngineLoad {
  int running = 0;
  int waiting = 0;
  int64_t waiting_tokens = 0;
  uint64_t steps = 0;
};

// A snapshot of the engine's counters (for GetLoad and metrics). Counters
// are cumulative since start; gauges are as of the end of the last step.
struct EngineStats {
  // Gauges.
  int running = 0;            // sequences in the batch
  int waiting = 0;            // requests not yet admitted
  int preempted = 0;          // sequences waiting to be recomputed
  int64_t waiting_tokens = 0;
  int64_t kv_block_size_tokens = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_used = 0;    // referenced by a sequence
  int32_t kv_blocks_free = 0;    // total - used (includes the cached ones)
  int32_t kv_blocks_cached = 0;  // free but holding a prefix-cache entry
  // Counters.
  uint64_t steps = 0;
  uint64_t admitted_requests = 0;          // first admissions (not resumptions)
  uint64_t finished_requests = 0;          // every end: stop, length, cancel, error
  uint64_t rejected_requests = 0;          // RESOURCE_EXHAUSTED at Submit
  uint64_t preemptions = 0;
  uint64_t prefill_tokens_computed = 0;    // prompt tokens run (and tokens recomputed after preemption)
  uint64_t decode_tokens_computed = 0;     // sampled tokens fed back, one per decode step
  uint64_t prefix_cache_queried_tokens = 0;  // tokens looked up at admission
  uint64_t prefix_cache_hit_tokens = 0;      // ... and found in the cache
  uint64_t generated_tokens = 0;
  double queue_seconds_total = 0;  // Submit to first admission, summed over admitted requests
  double queue_seconds_max = 0;
  // Tokens the gates sent to each expert, [layer * num_experts + expert].
  int64_t num_layers = 0;
  int64_t num_experts = 0;
  std::vector<uint64_t> expert_tokens;
};

// One batch of work at a time on a thread of its own (the engine uses it for
// the next token masks of constrained sequences while the forward pass runs).
// Start and Wait from one thread; the thread starts at the first Start.
class SideWorker {
 public:
  SideWorker() = default;
  ~SideWorker();
  SideWorker(const SideWorker&) = delete;
  SideWorker& operator=(const SideWorker&) = delete;
  // Runs `work` on the side thread. The previous work must have been waited for.
  void Start(std::function<void()> work);
  // Returns once the work given to Start has run.
  void Wait();

 private:
  void Loop();
  bool HasWorkOrQuit() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return work_ != nullptr || quit_; }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !busy_; }
  absl::Mutex mu_;
  std::function<void()> work_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class Engine {
 public:
  // Checks the options and has the device create the KV cache
  // (INVALID_ARGUMENT naming the option), then starts the engine thread.
  // `device` must outlive the engine; only the engine thread runs it.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(DenseDevice* device, const EngineOptions& options);
  ~Engine();  // stops the thread; unfinished requests end with CANCELLED

  // Validates and queues a request. INVALID_ARGUMENT for a bad request (empty
  // prompt, ids outside the vocabulary, prompt + max_tokens past the context),
  // RESOURCE_EXHAUSTED when the waiting queue is full (naming the limit) or
  // the request can never fit in the KV cache, UNAVAILABLE after Stop.
  // Returns the request's id (request.id, or a fresh one when it was 0).
  absl::StatusOr<uint64_t> Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink);
  // A fresh request id, for callers that submit several samples under one id.
  uint64_t NewRequestId() { return next_id_.fetch_add(1); }
  // Ends request `id` (all its samples, or only `sample_index`) at the next
  // step with FinishReason::kCancelled. False if no such request is live.
  bool Abort(uint64_t id, std::optional<uint64_t> sample_index = std::nullopt);
  EngineLoad Load() const;
  // Thread-safe snapshot.
  EngineStats Stats() const;
  // KV cache capacity (fixed at Create).
  int32_t kv_blocks_total() const { return kv_blocks_total_; }
  int64_t kv_capacity_tokens() const { return kv_blocks_total_ * options_.kv_cache.block_size_tokens; }
  // Ends the engine thread. Unfinished requests end with `status`: OK means
  // FinishReason::kCancelled (a clean stop); an error (e.g. UNAVAILABLE at
  // the end of a drain) is the status their streams end with.
  void Stop(const absl::Status& status = absl::OkStatus());
  // Drain: from now on Submit refuses (UNAVAILABLE); requests already in run on.
  void StopAccepting();
  // Requests submitted and not yet finished (waiting, running, preempted).
  int64_t InFlight() const;

 private:
  struct Sequence;
  struct ScheduledChunk {
    Sequence* seq;
    int64_t tokens;
  };
  Engine(DenseDevice* device, const EngineOptions& options,
         std::unique_ptr<KvCache> cache);

  void Run();
  // Collects aborted, cancelled and expired sequences (running, preempted and
  // waiting) and ends them.
  void DropCancelled();
  // Picks this step's chunks: the running sequences (preempting as needed),
  // then, if nothing was preempted, admissions.
  std::vector<ScheduledChunk> Schedule();
  // Running sequences, oldest first, within `budget` tokens; preempts the
  // newest when blocks run out. True if it preempted (no admission then).
  bool ScheduleRunning(std::vector<ScheduledChunk>* chunks, int64_t* budget);
  // Preempted sequences, then waiting requests, while budget, sequence slots
  // and free blocks (above a watermark) last.
  void Admit(std::vector<ScheduledChunk>* chunks, int64_t* budget);
  // The next sequence to admit (a preempted one first), or null.
  std::unique_ptr<Sequence> NextToAdmit(const std::vector<const std::vector<int32_t>*>& admitted, bool* resumed)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Returns a sequence that did not fit to the front of its queue.
  void PutBack(std::unique_ptr<Sequence> seq, bool resumed) ABSL_LOCKS_EXCLUDED(mu_);
  void CountAdmission(Sequence& seq, int64_t hit, int64_t len);
  // Positions `kv` can hold with its blocks and every free one.
  int64_t Room(const SequenceKv& kv) const;
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Preempt(std::unique_ptr<Sequence> seq);
  void Step(const std::vector<ScheduledChunk>& chunks);
  void Finish(Sequence& seq, const absl::Status& status, FinishReason reason);
  void PublishStats();

  DenseDevice* device_;
  const ModelConfig config_;
  const EngineOptions options_;
  const int32_t kv_blocks_total_;

  // Engine thread only.
  std::unique_ptr<KvCache> cache_;
  std::vector<std::unique_ptr<Sequence>> running_;    // in admission order, oldest first
  std::deque<std::unique_ptr<Sequence>> preempted_;   // resumed before waiting requests
  EngineStats counters_;                               // the counters part of the stats
  std::vector<float> logits_;
  SideWorker side_;  // next masks beside the forward pass

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Sequence>> waiting_ ABSL_GUARDED_BY(mu_);
  int64_t waiting_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, int> live_ids_ ABSL_GUARDED_BY(mu_);  // id -> live samples
  struct AbortOrder {
    uint64_t id;
    std::optional<uint64_t> sample_index;  // none: every sample
  };
  std::vector<AbortOrder> aborts_ ABSL_GUARDED_BY(mu_);  // requests to cancel
  std::atomic<uint64_t> next_id_{1};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_status_ ABSL_GUARDED_BY(mu_);
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  EngineStats published_ ABSL_GUARDED_BY(mu_);  // as of the last step
  uint64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> running_count_{0};
  std::atomic<uint64_t> steps_{0};
  std::thread thread_;
};

}  // namespace moe

#endif  // MOE_ROUTER_ENGINE_H_
