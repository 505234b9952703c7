#include "router/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moe {

Engine::Engine(ForwardPass* forward, const ModelConfig& config, const EngineOptions& options)
    : forward_(forward), config_(config), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

Engine::~Engine() { Stop(); }

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::Submit(GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
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

  auto seq = std::make_unique<Sequence>();
  // End tokens (eos unless ignored, and stop ids) are held back until min_tokens.
  std::vector<int32_t> end_ids(request.stop_token_ids.begin(), request.stop_token_ids.end());
  if (!request.sampling.ignore_eos) {
    for (int64_t id : config_.eos_token_ids) end_ids.push_back(static_cast<int32_t>(id));
  }
  seq->sampler = std::make_unique<Sampler>(request.sampling, request.prompt, std::move(end_ids));
  seq->request = std::move(request);
  seq->sink = std::move(sink);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the router is shutting down");
    if (static_cast<int>(waiting_.size()) >= options_.max_waiting_requests) {
      return absl::ResourceExhaustedError(absl::StrCat("too many waiting requests (limit ",
                                                       options_.max_waiting_requests, ")"));
    }
    waiting_tokens_ += n;
    ++live_ids_[seq->request.request_id];
    waiting_.push_back(std::move(seq));
  }
  cv_.notify_one();
  return absl::OkStatus();
}

bool Engine::Abort(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_ids_.count(request_id) == 0) return false;
  aborts_.push_back(request_id);
  return true;
}

EngineLoad Engine::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineLoad load;
  load.running = running_count_.load();
  load.waiting = static_cast<int>(waiting_.size());
  load.waiting_tokens = waiting_tokens_;
  load.steps = steps_.load();
  return load;
}

void Engine::Finish(Sequence& seq, const absl::Status& status, FinishReason reason) {
  seq.sink->OnFinish(status, reason, static_cast<int>(seq.request.prompt.size()),
                     static_cast<int>(seq.generated.size()));
  seq.kv.reset();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_ids_.find(seq.request.request_id);
  if (it != live_ids_.end() && --it->second == 0) live_ids_.erase(it);
}

void Engine::Run() {
  std::vector<std::unique_ptr<Sequence>> running;
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> cancelled;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !running.empty(); });
      if (stopping_) {
        for (auto& s : waiting_) running.push_back(std::move(s));
        waiting_.clear();
        waiting_tokens_ = 0;
        lock.unlock();
        for (auto& s : running) Finish(*s, absl::OkStatus(), FinishReason::kCancelled);
        running_count_ = 0;
        return;
      }
      // Aborts by id, for running and waiting sequences.
      if (!aborts_.empty()) {
        auto aborted = [&](const Sequence& s) {
          return std::find(aborts_.begin(), aborts_.end(), s.request.request_id) != aborts_.end();
        };
        for (auto& s : running)
          if (aborted(*s)) cancelled.push_back(std::move(s));
        for (auto& s : waiting_)
          if (aborted(*s)) {
            waiting_tokens_ -= static_cast<int64_t>(s->request.prompt.size());
            cancelled.push_back(std::move(s));
          }
        aborts_.clear();
        std::erase(running, nullptr);
        std::erase(waiting_, nullptr);
      }
      // Admit waiting requests while the step's token budget and the running
      // limit allow (a lone long prompt is admitted anyway).
      int64_t budget = options_.max_batch_tokens - static_cast<int64_t>(running.size());
      while (!waiting_.empty() && static_cast<int>(running.size()) < options_.max_running_seqs) {
        const int64_t n = static_cast<int64_t>(waiting_.front()->request.prompt.size());
        if (n > budget && !(running.empty() && budget == options_.max_batch_tokens)) break;
        budget -= n;
        waiting_tokens_ -= n;
        running.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
    }
    for (auto& s : running) {
      if (s->sink->Cancelled()) cancelled.push_back(std::move(s));
    }
    std::erase(running, nullptr);
    for (auto& s : cancelled) Finish(*s, absl::OkStatus(), FinishReason::kCancelled);
    running_count_ = static_cast<int>(running.size());
    if (!running.empty()) Step(running);
    running_count_ = static_cast<int>(running.size());
  }
}

void Engine::Step(std::vector<std::unique_ptr<Sequence>>& running) {
  std::vector<SequenceInput> batch;
  batch.reserve(running.size());
  for (auto& s : running) {
    if (!s->prefilled) {
      s->kv = std::make_unique<SequenceKv>(config_);
      batch.push_back({s->kv.get(), s->request.prompt});
    } else {
      batch.push_back({s->kv.get(), {&s->next_input, 1}});
    }
  }
  std::vector<float> logits;
  const absl::Status status = forward_->Forward(batch, &logits);
  steps_.fetch_add(1);
  if (!status.ok()) {
    LOG(WARNING) << "step failed for " << running.size() << " sequences: " << status;
    for (auto& s : running) Finish(*s, status, FinishReason::kStop);
    running.clear();
    return;
  }
  const int64_t V = config_.vocab_size;
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence& s = *running[i];
    s.prefilled = true;
    const GeneratedToken tok = s.sampler->Sample(absl::MakeConstSpan(&logits[i * V], V));
    s.generated.push_back(tok.id);
    s.next_input = tok.id;
    s.sink->OnToken(tok);
    const bool is_eos = std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), tok.id) !=
                        config_.eos_token_ids.end();
    const bool is_stop = std::find(s.request.stop_token_ids.begin(), s.request.stop_token_ids.end(), tok.id) !=
                         s.request.stop_token_ids.end();
    const int64_t length = s.kv->length() + 1;  // the new token's position is next
    if ((is_eos && !s.request.sampling.ignore_eos) || is_stop) {
      Finish(s, absl::OkStatus(), FinishReason::kStop);
      running[i].reset();
    } else if ((s.request.max_tokens > 0 && static_cast<int>(s.generated.size()) >= s.request.max_tokens) ||
               length >= config_.max_position_embeddings) {
      Finish(s, absl::OkStatus(), FinishReason::kLength);
      running[i].reset();
    }
  }
  std::erase(running, nullptr);
}

}  // namespace moe
