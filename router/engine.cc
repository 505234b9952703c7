#include "router/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "glog/logging.h"

namespace moe {
namespace {

// "client-id#7/1" (sample 1 of request 7) for logs and messages.
std::string Describe(const GenerationRequest& r) {
  return absl::StrCat(r.client_id, "#", r.id, "/", r.sampling.sample_index);
}

}  // namespace

struct Engine::Sequence {
  GenerationRequest request;
  std::shared_ptr<GenerationSink> sink;
  std::unique_ptr<Sampler> sampler;
  std::vector<int32_t> tokens;     // the prompt, then every generated token
  int64_t prompt_tokens = 0;
  std::unique_ptr<SequenceKv> kv;  // set while running; positions [0, kv->length()) computed
  std::chrono::steady_clock::time_point submitted;
  bool admitted_before = false;
  std::vector<GeneratedToken> prompt_logprobs;  // filled while the prompt is computed
  bool prompt_logprobs_sent = false;

  bool WantsPromptLogprobs() const { return request.prompt_logprobs >= 0 && !prompt_logprobs_sent; }
  int generated() const { return static_cast<int>(static_cast<int64_t>(tokens.size()) - prompt_tokens); }
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(DenseDevice* device, const EngineOptions& options) {
  if (options.max_running_seqs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_running_seqs: must be >= 1, got ", options.max_running_seqs));
  }
  if (options.max_batch_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_batch_tokens: must be >= 1, got ", options.max_batch_tokens));
  }
  if (options.max_waiting_requests < 0 || options.max_waiting_tokens < 0) {
    return absl::InvalidArgumentError("max_waiting_requests, max_waiting_tokens: must be >= 0");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, device->CreateKvCache(options.kv_cache));
  return std::unique_ptr<Engine>(new Engine(device, options, std::move(cache)));
}

Engine::Engine(DenseDevice* device, const EngineOptions& options, std::unique_ptr<KvCache> cache)
    : device_(device),
      config_(device->config()),
      options_(options),
      kv_blocks_total_(cache->num_blocks()),
      cache_(std::move(cache)) {
  counters_.kv_block_size_tokens = cache_->block_size();
  counters_.kv_blocks_total = cache_->num_blocks();
  counters_.kv_blocks_free = cache_->num_blocks();
  counters_.num_layers = config_.num_hidden_layers;
  counters_.num_experts = config_.num_experts;
  published_ = counters_;
  thread_ = std::thread([this] { Run(); });
}

Engine::~Engine() { Stop(); }

void Engine::Stop(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    if (!stopping_) stop_status_ = status;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<uint64_t> Engine::Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  if (n == 0) return absl::InvalidArgumentError("prompt: at least one token is required");
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: token id ", id, " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  for (int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("stop_token_ids: token id ", id,
                                                     " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  const int64_t context = config_.max_position_embeddings;
  if (request.max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: must be >= 1, got ", request.max_tokens));
  }
  if (n >= context) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", n, " tokens leave no room in the context of ",
                                                   context, " tokens"));
  }
  if (request.max_tokens > 0 && n + request.max_tokens > context) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens: prompt (", n, " tokens) + max_tokens (",
                                                   request.max_tokens, ") exceeds the context of ", context,
                                                   " tokens"));
  }
  if (auto s = ValidateSamplingOptions(request.sampling, config_.vocab_size); !s.ok()) return s;

  // A request that cannot fit in the whole KV cache could never finish.
  const int64_t bs = options_.kv_cache.block_size_tokens;
  const int64_t least = n + std::max(request.max_tokens, 1);
  const int64_t blocks = (least + bs - 1) / bs;
  if (blocks > kv_blocks_total_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "request needs ", blocks, " KV blocks (prompt ", n, " tokens + max_tokens ", std::max(request.max_tokens, 1),
        "), the KV cache holds ", kv_blocks_total_, " blocks of ", bs, " tokens"));
  }

  std::unique_ptr<grammar::TokenConstraint> constraint;
  if (!request.constraint.none()) {
    if (options_.constraints == nullptr) {
      return absl::FailedPreconditionError(
          "structured output (a regex or choice constraint) needs the model's tokenizer.json, which this router "
          "could not read token bytes from");
    }
    ASSIGN_OR_RETURN(constraint, options_.constraints->Compile(request.constraint));
  }
  auto seq = std::make_unique<Sequence>();
  // End tokens (eos unless ignored, and stop ids) are held back until min_tokens.
  std::vector<int32_t> end_ids(request.stop_token_ids.begin(), request.stop_token_ids.end());
  if (!request.sampling.ignore_eos) {
    for (int64_t id : config_.eos_token_ids) end_ids.push_back(static_cast<int32_t>(id));
  }
  seq->sampler = std::make_unique<Sampler>(request.sampling, request.prompt, std::move(end_ids), std::move(constraint));
  seq->prompt_tokens = n;
  seq->tokens = request.prompt;
  seq->request = std::move(request);
  seq->sink = std::move(sink);
  seq->submitted = std::chrono::steady_clock::now();
  uint64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the router is shutting down");
    if (!accepting_) return absl::UnavailableError("the router is draining (shutting down); retry on another router");
    if (static_cast<int>(waiting_.size()) >= options_.max_waiting_requests) {
      ++rejected_;
      return absl::ResourceExhaustedError(absl::StrCat("too many waiting requests (limit ",
                                                       options_.max_waiting_requests, ")"));
    }
    // A lone prompt above the token limit is still taken: it could never run otherwise.
    if (!waiting_.empty() && waiting_tokens_ + n > options_.max_waiting_tokens) {
      ++rejected_;
      return absl::ResourceExhaustedError(absl::StrCat("too many waiting prompt tokens: ", waiting_tokens_,
                                                       " waiting + ", n, " new exceeds the limit of ",
                                                       options_.max_waiting_tokens));
    }
    waiting_tokens_ += n;
    if (seq->request.id == 0) seq->request.id = NewRequestId();
    id = seq->request.id;
    ++live_ids_[id];
    ++in_flight_;
    waiting_.push_back(std::move(seq));
  }
  return id;
}

bool Engine::Abort(uint64_t id, std::optional<uint64_t> sample_index) {
  absl::MutexLock lock(&mu_);
  if (live_ids_.count(id) == 0) return false;
  aborts_.push_back({id, sample_index});
  return true;
}

EngineLoad Engine::Load() const {
  absl::MutexLock lock(&mu_);
  EngineLoad load;
  load.running = running_count_.load();
  load.waiting = static_cast<int>(waiting_.size());
  load.waiting_tokens = waiting_tokens_;
  load.steps = steps_.load();
  return load;
}

EngineStats Engine::Stats() const {
  EngineStats stats;
  {
    absl::MutexLock lock(&mu_);
    stats = published_;
    stats.waiting = static_cast<int>(waiting_.size());
    stats.waiting_tokens = waiting_tokens_;
    stats.rejected_requests = rejected_;
  }
  stats.expert_tokens = device_->ExpertTokenCounts();
  return stats;
}

void Engine::PublishStats() {
  EngineStats s = counters_;
  s.running = static_cast<int>(running_.size());
  s.preempted = static_cast<int>(preempted_.size());
  s.kv_blocks_used = cache_->num_used_blocks();
  s.kv_blocks_free = cache_->num_free_blocks();
  s.kv_blocks_cached = cache_->num_cached_blocks();
  s.steps = steps_.load();
  running_count_ = s.running + s.preempted;
  absl::MutexLock lock(&mu_);
  published_ = std::move(s);
}

void Engine::Finish(Sequence& seq, const absl::Status& status, FinishReason reason) {
  seq.sink->OnFinish(status, reason, static_cast<int>(seq.prompt_tokens), seq.generated());
  seq.kv.reset();  // frees its blocks (full ones stay in the prefix cache)
  ++counters_.finished_requests;
  absl::MutexLock lock(&mu_);
  auto it = live_ids_.find(seq.request.id);
  if (it != live_ids_.end() && --it->second == 0) live_ids_.erase(it);
  --in_flight_;
}

void Engine::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

int64_t Engine::InFlight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

bool Engine::HasWork() const {
  return stopping_ || !waiting_.empty() || !running_.empty() || !preempted_.empty();
}

void Engine::Run() {
  for (;;) {
    bool stop = false;
    std::vector<std::unique_ptr<Sequence>> all;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Engine::HasWork));
      if (stopping_) {
        stop = true;
        for (auto& s : running_) all.push_back(std::move(s));
        for (auto& s : preempted_) all.push_back(std::move(s));
        for (auto& s : waiting_) all.push_back(std::move(s));
        running_.clear();
        preempted_.clear();
        waiting_.clear();
        waiting_tokens_ = 0;
        status = stop_status_;
      }
    }
    if (stop) {
      for (auto& s : all) Finish(*s, status, FinishReason::kCancelled);
      PublishStats();
      return;
    }
    DropCancelled();
    const std::vector<ScheduledChunk> chunks = Schedule();
    if (!chunks.empty()) Step(chunks);
    PublishStats();
  }
}

void Engine::DropCancelled() {
  struct Dropped {
    std::unique_ptr<Sequence> seq;
    absl::Status status;
  };
  std::vector<Dropped> dropped;
  const absl::Time now = absl::Now();
  std::vector<AbortOrder> aborts;
  auto aborted = [&](const GenerationRequest& r) {
    for (const AbortOrder& a : aborts) {
      if (a.id == r.id && (!a.sample_index || *a.sample_index == r.sampling.sample_index)) return true;
    }
    return false;
  };
  // OK (cancelled), DEADLINE_EXCEEDED, or nullopt to keep the sequence.
  auto verdict = [&](const Sequence& s) -> std::optional<absl::Status> {
    if (s.sink->Cancelled() || aborted(s.request)) return absl::OkStatus();
    if (now >= s.request.deadline) {
      return absl::DeadlineExceededError(absl::StrCat("request ", Describe(s.request), ": deadline passed after ",
                                                      s.generated(), " generated tokens"));
    }
    return std::nullopt;
  };
  {
    absl::MutexLock lock(&mu_);
    aborts.swap(aborts_);
    for (auto& s : waiting_) {
      if (auto v = verdict(*s)) {
        waiting_tokens_ -= s->prompt_tokens;
        dropped.push_back({std::move(s), *v});
      }
    }
    std::erase(waiting_, nullptr);
  }
  for (auto& s : running_) {
    if (auto v = verdict(*s)) dropped.push_back({std::move(s), *v});
  }
  std::erase(running_, nullptr);
  for (auto& s : preempted_) {
    if (auto v = verdict(*s)) dropped.push_back({std::move(s), *v});
  }
  std::erase(preempted_, nullptr);
  for (auto& d : dropped) Finish(*d.seq, d.status, FinishReason::kCancelled);
}

void Engine::Preempt(std::unique_ptr<Sequence> seq) {
  VLOG(1) << "request " << Describe(seq->request) << ": preempted at " << seq->tokens.size()
          << " tokens (KV cache full)";
  seq->kv.reset();  // recomputed when resumed; its full blocks stay in the prefix cache
  ++counters_.preemptions;
  preempted_.push_front(std::move(seq));
}

std::vector<Engine::ScheduledChunk> Engine::Schedule() {
  std::vector<ScheduledChunk> chunks;
  int64_t budget = options_.max_batch_tokens;
  // No admission in a step that ran short of blocks.
  if (!ScheduleRunning(&chunks, &budget)) Admit(&chunks, &budget);
  return chunks;
}

int64_t Engine::Room(const SequenceKv& kv) const {
  const int64_t bs = cache_->block_size();
  return static_cast<int64_t>(kv.blocks().size()) * bs - kv.length() +
         static_cast<int64_t>(cache_->num_free_blocks()) * bs;
}

bool Engine::ScheduleRunning(std::vector<ScheduledChunk>* chunks, int64_t* budget) {
  bool preempted_now = false;
  for (size_t i = 0; i < running_.size(); ++i) {  // oldest first
    Sequence& s = *running_[i];
    const int64_t remaining = static_cast<int64_t>(s.tokens.size()) - s.kv->length();
    int64_t n = remaining == 1 ? 1 : std::min(remaining, *budget);
    if (n <= 0) continue;
    // Free blocks by preempting the most recently admitted sequences.
    while (Room(*s.kv) < 1 && running_.size() > i + 1) {
      Preempt(std::move(running_.back()));
      running_.pop_back();
      preempted_now = true;
    }
    if (Room(*s.kv) < 1) {
      if (i == 0) {
        // Alone and the cache is full of it: it can never go on.
        std::unique_ptr<Sequence> seq = std::move(running_[0]);
        running_.erase(running_.begin());
        Finish(*seq,
               absl::ResourceExhaustedError(absl::StrCat("request ", Describe(seq->request), ": ",
                                                         seq->tokens.size(), " tokens outgrow the KV cache of ",
                                                         cache_->capacity_tokens(), " tokens")),
               FinishReason::kStop);
      } else {
        Preempt(std::move(running_.back()));
        running_.pop_back();
        preempted_now = true;
      }
      break;
    }
    n = std::min(n, Room(*s.kv));
    CHECK(s.kv->Reserve(s.kv->length() + n));
    chunks->push_back({&s, n});
    *budget -= n;
  }
  return preempted_now;
}

std::unique_ptr<Engine::Sequence> Engine::NextToAdmit(const std::vector<const std::vector<int32_t>*>& admitted,
                                                      bool* resumed) {
  *resumed = !preempted_.empty();
  if (*resumed) {
    std::unique_ptr<Sequence> seq = std::move(preempted_.front());
    preempted_.pop_front();
    return seq;
  }
  absl::MutexLock lock(&mu_);
  if (waiting_.empty()) return nullptr;
  // A waiting request with the same prompt as one admitted in this step (the
  // n samples of one request, or a repeated prompt) waits one step, so that
  // it finds the first one's full blocks in the prefix cache instead of
  // computing them again.
  const std::vector<int32_t>& tokens = waiting_.front()->tokens;
  if (cache_->prefix_caching() && static_cast<int64_t>(tokens.size()) > cache_->block_size() &&
      std::any_of(admitted.begin(), admitted.end(), [&](const std::vector<int32_t>* p) { return *p == tokens; })) {
    return nullptr;
  }
  std::unique_ptr<Sequence> seq = std::move(waiting_.front());
  waiting_.pop_front();
  waiting_tokens_ -= seq->prompt_tokens;
  return seq;
}

void Engine::PutBack(std::unique_ptr<Sequence> seq, bool resumed) {
  seq->kv.reset();
  if (resumed) {
    preempted_.push_front(std::move(seq));
    return;
  }
  absl::MutexLock lock(&mu_);
  waiting_tokens_ += seq->prompt_tokens;
  waiting_.push_front(std::move(seq));
}

void Engine::Admit(std::vector<ScheduledChunk>* chunks, int64_t* budget) {
  const int64_t bs = cache_->block_size();
  // Blocks kept free for the running sequences' next decode tokens.
  const int32_t watermark = running_.empty() ? 0 : std::max<int32_t>(1, cache_->num_blocks() / 100);
  std::vector<const std::vector<int32_t>*> admitted_prompts;
  while (*budget > 0 && static_cast<int>(running_.size()) < options_.max_running_seqs) {
    bool resumed = false;  // preempted sequences come first, then waiting requests
    std::unique_ptr<Sequence> seq = NextToAdmit(admitted_prompts, &resumed);
    if (seq == nullptr) break;
    // Submitted after this step's DropCancelled with a deadline already
    // passed: it ends here rather than running a step first.
    if (!resumed && absl::Now() >= seq->request.deadline) {
      Finish(*seq,
             absl::DeadlineExceededError(absl::StrCat("request ", Describe(seq->request),
                                                      ": deadline passed before it was admitted")),
             FinishReason::kCancelled);
      continue;
    }
    seq->kv = std::make_unique<SequenceKv>(cache_.get());
    const int64_t len = static_cast<int64_t>(seq->tokens.size());
    // The last token is always computed: its logits give the next token.
    const int64_t hit = seq->WantsPromptLogprobs() ? 0 : seq->kv->AttachCachedPrefix(seq->tokens, len - 1);
    // The chunk shrinks to the free blocks above the watermark.
    const int64_t free_positions = (static_cast<int64_t>(cache_->num_free_blocks()) - watermark) * bs;
    const int64_t n = std::min({len - hit, *budget, free_positions});
    if (n < 1) {
      PutBack(std::move(seq), resumed);
      break;
    }
    CHECK(seq->kv->Reserve(hit + n));
    CountAdmission(*seq, hit, len);
    VLOG(1) << "request " << Describe(seq->request) << (resumed ? ": resumed, " : ": admitted, ") << hit
            << " of " << len << " tokens from the prefix cache";
    chunks->push_back({seq.get(), n});
    if (!resumed) admitted_prompts.push_back(&seq->tokens);
    *budget -= n;
    running_.push_back(std::move(seq));
  }
}

void Engine::CountAdmission(Sequence& seq, int64_t hit, int64_t len) {
  if (cache_->prefix_caching()) {
    counters_.prefix_cache_queried_tokens += static_cast<uint64_t>(len - 1);
    counters_.prefix_cache_hit_tokens += static_cast<uint64_t>(hit);
  }
  if (seq.admitted_before) return;
  seq.admitted_before = true;
  ++counters_.admitted_requests;
  const double q = std::chrono::duration<double>(std::chrono::steady_clock::now() - seq.submitted).count();
  counters_.queue_seconds_total += q;
  counters_.queue_seconds_max = std::max(counters_.queue_seconds_max, q);
  seq.sink->OnAdmitted(q);
}

void Engine::Step(const std::vector<ScheduledChunk>& chunks) {
  std::vector<SequenceInput> batch;
  batch.reserve(chunks.size());
  for (const ScheduledChunk& c : chunks) {
    Sequence& s = *c.seq;
    const int64_t at = s.kv->length();
    const bool last = at + c.tokens == static_cast<int64_t>(s.tokens.size());
    const bool scoring_prompt = s.WantsPromptLogprobs() && at < s.prompt_tokens;
    batch.push_back({s.kv.get(), absl::Span<const int32_t>(s.tokens).subspan(at, c.tokens),
                     /*all_logits=*/scoring_prompt, /*no_logits=*/!last && !scoring_prompt});
    // A decode step feeds the token sampled last step; anything else is prefill.
    const bool decode = c.tokens == 1 && last && at >= s.prompt_tokens;
    (decode ? counters_.decode_tokens_computed : counters_.prefill_tokens_computed) += static_cast<uint64_t>(c.tokens);
  }
  // The masks of this step's constrained sequences are computed beside the
  // forward pass (they depend only on the tokens so far): a first visit of a
  // grammar state then costs no step time.
  std::vector<Sampler*> prepare;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Sequence& s = *chunks[i].seq;
    const bool samples = s.kv->length() + chunks[i].tokens == static_cast<int64_t>(s.tokens.size());
    if (samples && s.sampler->constrained()) prepare.push_back(s.sampler.get());
  }
  if (!prepare.empty()) {
    side_.Start([&prepare] {
      for (Sampler* p : prepare) p->PrepareConstraint();
    });
  }
  const absl::Status status = device_->Forward(batch, &logits_);
  if (!prepare.empty()) side_.Wait();
  steps_.fetch_add(1);
  VLOG(1) << "step " << steps_.load() << ": " << chunks.size() << " sequences, status " << status;
  std::vector<Sequence*> done;
  if (!status.ok()) {
    LOG(WARNING) << "step failed for " << chunks.size() << " sequences: " << status;
    for (const ScheduledChunk& c : chunks) {
      Finish(*c.seq, status, FinishReason::kStop);
      done.push_back(c.seq);
    }
  } else {
    const int64_t V = config_.vocab_size;
    int64_t row = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      Sequence& s = *chunks[i].seq;
      s.kv->RegisterFullBlocks(s.tokens);
      if (batch[i].no_logits) continue;
      if (batch[i].all_logits) {
        // Row j predicts the token at position at + j + 1.
        const int64_t at = s.kv->length() - chunks[i].tokens;
        if (at == 0) {  // also after a preemption: the prompt is scored again from the start
          s.prompt_logprobs.clear();
          s.prompt_logprobs.push_back(GeneratedToken{s.tokens[0], 0.0, {}});
        }
        for (int64_t j = 0; j < chunks[i].tokens; ++j) {
          const int64_t pos = at + j + 1;
          if (pos >= s.prompt_tokens) break;
          s.prompt_logprobs.push_back(ScoreToken(absl::MakeConstSpan(&logits_[(row + j) * V], V), s.tokens[pos],
                                                 s.request.prompt_logprobs));
        }
        row += chunks[i].tokens - 1;  // the last row samples, as usual
        if (at + chunks[i].tokens < static_cast<int64_t>(s.tokens.size())) {
          ++row;
          continue;  // the prompt is not complete yet
        }
        s.sink->OnPromptLogprobs(s.prompt_logprobs);
        s.prompt_logprobs_sent = true;
        s.prompt_logprobs.clear();
      }
      const GeneratedToken tok = s.sampler->Sample(absl::MakeConstSpan(&logits_[row * V], V));
      ++row;
      s.tokens.push_back(tok.id);
      ++counters_.generated_tokens;
      s.sink->OnToken(tok);
      const bool is_eos = std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), tok.id) !=
                          config_.eos_token_ids.end();
      const bool is_stop = std::find(s.request.stop_token_ids.begin(), s.request.stop_token_ids.end(), tok.id) !=
                           s.request.stop_token_ids.end();
      if ((is_eos && !s.request.sampling.ignore_eos) || is_stop || s.sampler->ConstraintExhausted()) {
        Finish(s, absl::OkStatus(), FinishReason::kStop);
        done.push_back(&s);
      } else if ((s.request.max_tokens > 0 && s.generated() >= s.request.max_tokens) ||
                 static_cast<int64_t>(s.tokens.size()) >= config_.max_position_embeddings) {
        Finish(s, absl::OkStatus(), FinishReason::kLength);
        done.push_back(&s);
      }
    }
  }
  if (!done.empty()) {
    std::erase_if(running_, [&](const std::unique_ptr<Sequence>& s) {
      return std::find(done.begin(), done.end(), s.get()) != done.end();
    });
  }
}

SideWorker::~SideWorker() {
  {
    absl::MutexLock lock(&mu_);
    quit_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SideWorker::Start(std::function<void()> work) {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  absl::MutexLock lock(&mu_);
  work_ = std::move(work);
  busy_ = true;
}

void SideWorker::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &SideWorker::Idle));
}

void SideWorker::Loop() {
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SideWorker::HasWorkOrQuit));
      if (work_ == nullptr) return;  // quit
      work = std::move(work_);
      work_ = nullptr;
    }
    work();
    absl::MutexLock lock(&mu_);
    busy_ = false;
  }
}

}  // namespace moe
