// moe-bench: prefill and decode throughput of the engine's dense device (the
// CPU, or a GPU with --device cuda:N), the memory bandwidth it reads weights
// at (the host's read bandwidth; on a GPU, its device-to-device copy
// bandwidth), and decode efficiency against the bandwidth bound (decode
// reads every active weight once per step).
//
// With --concurrency N,N,...: the router engine (continuous batching over the
// paged KV cache) serving N concurrent greedy requests at once, for each N:
// aggregate decode tokens/s once every prompt is prefilled.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "core/checkpoint.h"
#include "core/command_line.h"
#include "core/status_macros.h"
#include "core/kernels.h"
#include "core/thread_pool.h"
#include "experts/expert_shard.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "nlohmann/json.hpp"
#include "router/dense_model.h"
#include "router/engine.h"
#include "grammar/constraint.h"
#include "grammar/token_vocabulary.h"
#include "router/cuda/cuda_dense_device.h"
#include "router/cuda/nccl_experts.h"
#include "router/forward.h"
#include "router/remote_experts.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout).");
ABSL_FLAG(int, prefill_tokens, 512, "Prompt length for the prefill measurement.");
ABSL_FLAG(int, prefill_runs, 1,
          "Prefills timed one after another (each a fresh sequence); the median is reported, every run in --json.");
ABSL_FLAG(int, decode_steps, 32, "Decode steps per measurement.");
ABSL_FLAG(int, batch, 16, "Batch size of the batched decode measurement.");
ABSL_FLAG(int, threads, 0, "Compute threads (0: all available CPUs).");
ABSL_FLAG(int, bandwidth_mib, 1024, "Buffer size for the bandwidth measurement, MiB.");
ABSL_FLAG(bool, json, false, "Print the figures as one JSON object.");
ABSL_FLAG(std::string, expert_device, "cpu", "With --workers=local: where the experts run, cpu or cuda:N.");
ABSL_FLAG(std::string, device, "cpu", "Where the dense model and the KV cache run: cpu or cuda:N.");
ABSL_FLAG(std::string, expert_transport, "grpc",
          "grpc, or nccl: the NCCL transport (with --workers local --expert-device cuda:N, one rank sending to "
          "itself; with remote workers, they must be on GPUs and --device cuda:N).");
ABSL_FLAG(std::string, workers, "local",
          "Expert workers to dispatch to (comma-separated addresses), or 'local' for in-process experts.");
ABSL_FLAG(int64_t, dispatch_deadline_ms, 5000, "Deadline of one MoE-layer exchange with a worker, ms.");
ABSL_FLAG(std::string, concurrency, "",
          "Comma-separated request counts (e.g. 1,8,32,64): measure the engine with that many concurrent "
          "greedy requests instead of the single-sequence figures.");
ABSL_FLAG(int, prompt_tokens, 32, "With --concurrency: prompt length of every request.");
ABSL_FLAG(int, output_tokens, 64, "With --concurrency: tokens generated per request.");
ABSL_FLAG(int, runs, 3, "With --concurrency: runs per count; the best is reported.");
ABSL_FLAG(int, busy_threads, 0,
          "Threads that spin for the whole run beside the engine (0-64): a loaded host, for the thread pool's "
          "behaviour when its helpers are descheduled.");
ABSL_FLAG(std::string, json_schema, "",
          "With --concurrency: also run every count with each request under this JSON Schema (structured output; "
          "the model's tokenizer.json gives token bytes), alternating with the unconstrained runs, and report the "
          "ratio. Pick a schema the output cannot complete before --output-tokens (e.g. minItems).");

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Best of several parallel passes summing a buffer much larger than the caches.
double MeasureReadBandwidth(moe::ThreadPool& pool, size_t bytes) {
  const size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  pool.ParallelFor(static_cast<int64_t>(n), pool.ChunkFor(static_cast<int64_t>(n), 1), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
  });
  std::vector<uint64_t> sums(pool.num_threads() * 8, 0);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<uint64_t> total{0};
    const auto t0 = Clock::now();
    pool.ParallelFor(static_cast<int64_t>(n), pool.ChunkFor(static_cast<int64_t>(n), 1), [&](int64_t b, int64_t e) {
      uint64_t s[8] = {};
      int64_t i = b;
      for (; i + 8 <= e; i += 8)
        for (int l = 0; l < 8; ++l) s[l] += buf[i + l];
      for (; i < e; ++i) s[0] += buf[i];
      uint64_t t = 0;
      for (int l = 0; l < 8; ++l) t += s[l];
      total.fetch_add(t);
    });
    const double secs = Seconds(t0, Clock::now());
    if (total.load() == 42) std::cerr << "";  // keep the sum alive
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / secs);
  }
  return best;
}

std::vector<int32_t> SyntheticPrompt(int len, int salt, int64_t vocab) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>((i * 7919 + salt * 104729 + 13) % (vocab - 3)));
  return p;
}

// Records when each token of one request arrives (called on the engine thread).
class TimingSink : public moe::GenerationSink {
 public:
  void OnToken(const moe::GeneratedToken&) override { times.push_back(Clock::now()); }
  void OnFinish(const absl::Status& s, moe::FinishReason, int, int) override {
    absl::MutexLock lock(&mu_);
    status = s;
    done = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done));
  }
  std::vector<Clock::time_point> times;
  absl::Status status;

 private:
  absl::Mutex mu_;
  bool done ABSL_GUARDED_BY(mu_) = false;
};

struct ConcurrencyFigures {
  double decode_tokens_per_s = 0;  // tokens after the last first token, over that window
  double end_to_end_tokens_per_s = 0;  // every generated token over submit-to-last-token
  uint64_t steps = 0;
};

// N greedy requests submitted at once to a fresh engine.
absl::StatusOr<ConcurrencyFigures> RunConcurrent(moe::DenseDevice& forward, const moe::ModelConfig& cfg, int n,
                                                 int prompt_len, int output_len, int salt,
                                                 moe::grammar::ConstraintCompiler* constraints = nullptr,
                                                 const std::string& schema = "") {
  moe::EngineOptions o;
  o.max_running_seqs = std::max(64, n);
  o.constraints = constraints;
  ASSIGN_OR_RETURN(std::unique_ptr<moe::Engine> engine, moe::Engine::Create(&forward, o));
  std::vector<std::shared_ptr<TimingSink>> sinks;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    moe::GenerationRequest r;
    r.client_id = "bench-" + std::to_string(i);
    r.prompt = SyntheticPrompt(prompt_len, salt * 1000 + i, cfg.vocab_size);
    r.max_tokens = output_len;
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    if (!schema.empty()) {
      r.constraint.kind = moe::grammar::ConstraintSpec::Kind::kJsonSchema;
      r.constraint.json_schema = schema;
    }
    sinks.push_back(std::make_shared<TimingSink>());
    RETURN_IF_ERROR(engine->Submit(std::move(r), sinks.back()).status());
  }
  Clock::time_point all_first = t0, last = t0;
  int64_t total = 0;
  for (auto& s : sinks) {
    s->Wait();
    RETURN_IF_ERROR(s->status);
    if (s->times.empty()) return absl::InternalError("a request produced no token");
    all_first = std::max(all_first, s->times.front());
    last = std::max(last, s->times.back());
    total += static_cast<int64_t>(s->times.size());
  }
  int64_t decoded = 0;
  for (auto& s : sinks) {
    for (const auto& t : s->times) decoded += t > all_first ? 1 : 0;
  }
  ConcurrencyFigures f;
  f.decode_tokens_per_s = decoded / std::max(1e-9, Seconds(all_first, last));
  f.end_to_end_tokens_per_s = total / std::max(1e-9, Seconds(t0, last));
  f.steps = engine->Stats().steps;
  return f;
}

int Fail(const std::string& msg) {
  std::cerr << "moe-bench: " << msg << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "moe-bench --model DIR [--workers local|ADDR,...] [--prefill-tokens 512] [--batch 16] [--json]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) return Fail("--model is required");
  const int prefill_len = absl::GetFlag(FLAGS_prefill_tokens);
  const int steps = absl::GetFlag(FLAGS_decode_steps);
  const int batch = absl::GetFlag(FLAGS_batch);
  if (prefill_len < 1 || steps < 1 || batch < 1) return Fail("--prefill-tokens, --decode-steps and --batch must be >= 1");
  const int prefill_runs = absl::GetFlag(FLAGS_prefill_runs);
  if (prefill_runs < 1 || prefill_runs > 1000) return Fail("--prefill-runs must be in [1, 1000]");

  auto checkpoint = moe::Checkpoint::Open(dir);
  if (!checkpoint.ok()) return Fail(std::string(checkpoint.status().message()));
  const moe::ModelConfig& cfg = (*checkpoint)->config();
  if (prefill_len + steps + 1 > cfg.max_position_embeddings) return Fail("--prefill-tokens too long for the model's context");
  auto dense = moe::DenseModel::Load(**checkpoint);
  if (!dense.ok()) return Fail(std::string(dense.status().message()));
  moe::ThreadPool pool(absl::GetFlag(FLAGS_threads));
  // A loaded host: threads that compete for the CPUs until the end.
  const int busy = absl::GetFlag(FLAGS_busy_threads);
  if (busy < 0 || busy > 64) return Fail("--busy-threads must be in [0, 64]");
  std::atomic<bool> stop_busy{false};
  std::vector<std::thread> busy_threads;
  for (int i = 0; i < busy; ++i) {
    busy_threads.emplace_back([&stop_busy] {
      uint64_t x = 1;
      while (!stop_busy.load(std::memory_order_relaxed)) x = x * 6364136223846793005ull + 1;
      volatile uint64_t sink = x;
      (void)sink;
    });
  }
  struct JoinBusy {
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~JoinBusy() {
      stop->store(true);
      for (std::thread& t : *threads) t.join();
    }
  } join_busy{&stop_busy, &busy_threads};
  // Expert bytes per (layer, expert), from the tensor headers (nothing is read).
  int64_t per_expert = 0;
  for (int w = 0; w < 3; ++w) {
    auto t = (*checkpoint)->store().Get(moe::TensorNames::Expert(cfg, 0, 0, w));
    if (!t.ok()) return Fail(std::string(t.status().message()));
    per_expert += static_cast<int64_t>(t->nbytes());
  }
  std::unique_ptr<moe::ExpertShard> shard;
  std::unique_ptr<moe::ExpertBackend> experts;
  moe::RemoteExpertBackend* remote = nullptr;
  const std::string workers = absl::GetFlag(FLAGS_workers);
  std::unique_ptr<moe::ExpertRunner> gpu_runner;
  auto dense_device = moe::ParseExpertDevice(absl::GetFlag(FLAGS_device));
  if (!dense_device.ok()) return Fail("--device: " + std::string(dense_device.status().message()));
  const std::string transport = absl::GetFlag(FLAGS_expert_transport);
  if (transport != "grpc" && transport != "nccl") return Fail("--expert-transport: grpc or nccl");
  if (workers == "local") {
    auto s = moe::ExpertShard::Load(**checkpoint, {});
    if (!s.ok()) return Fail(std::string(s.status().message()));
    auto device = moe::ParseExpertDevice(absl::GetFlag(FLAGS_expert_device));
    if (!device.ok()) return Fail("--expert-device: " + std::string(device.status().message()));
    if (device->cuda) {
      auto gpu = moe::MakeCudaExpertRunner(std::move(*s), device->ordinal);
      if (!gpu.ok()) return Fail(std::string(gpu.status().message()));
      gpu_runner = std::move(*gpu);
      if (transport == "nccl") {
        moe::NcclExpertsOptions no;
        no.local_runner = gpu_runner.get();
        no.ordinal = device->ordinal;
        auto n = moe::MakeNcclExpertBackend(cfg, no);
        if (!n.ok()) return Fail(std::string(n.status().message()));
        experts = std::move(*n);
      } else {
        experts = std::make_unique<moe::LocalExpertBackend>(gpu_runner.get());
      }
    } else if (transport == "nccl") {
      return Fail("--expert-transport nccl with --workers local needs --expert-device cuda:N");
    } else {
      shard = std::move(*s);
      experts = std::make_unique<moe::LocalExpertBackend>(shard.get(), &pool);
    }
  } else if (transport == "nccl") {
    if (!dense_device->cuda) return Fail("--expert-transport nccl with workers needs --device cuda:N");
    moe::NcclExpertsOptions no;
    for (absl::string_view w : absl::StrSplit(workers, ',', absl::SkipWhitespace())) no.worker_addresses.emplace_back(w);
    no.ordinal = dense_device->ordinal;
    no.dispatch_deadline_ms = absl::GetFlag(FLAGS_dispatch_deadline_ms);
    auto n = moe::MakeNcclExpertBackend(cfg, no);
    if (!n.ok()) return Fail(std::string(n.status().message()));
    experts = std::move(*n);
  } else {
    moe::RemoteExpertsOptions ro;
    for (absl::string_view w : absl::StrSplit(workers, ',', absl::SkipWhitespace())) ro.worker_addresses.emplace_back(w);
    ro.dispatch_deadline_ms = absl::GetFlag(FLAGS_dispatch_deadline_ms);
    auto r = moe::RemoteExpertBackend::Connect(cfg, ro);
    if (!r.ok()) return Fail(std::string(r.status().message()));
    remote = r->get();
    experts = std::move(*r);
  }
  std::unique_ptr<moe::DenseDevice> device;
  if (dense_device->cuda) {
    auto d = moe::MakeCudaDenseDevice(dense->get(), experts.get(), dense_device->ordinal);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    device = std::move(*d);
  } else {
    device = std::make_unique<moe::ForwardPass>(dense->get(), experts.get(), &pool);
  }
  moe::DenseDevice& forward = *device;

  if (const std::string counts = absl::GetFlag(FLAGS_concurrency); !counts.empty()) {
    const int prompt_len_c = absl::GetFlag(FLAGS_prompt_tokens);
    const int output_len = absl::GetFlag(FLAGS_output_tokens);
    const int runs = absl::GetFlag(FLAGS_runs);
    if (prompt_len_c < 1 || output_len < 2 || runs < 1) {
      return Fail("--prompt-tokens must be >= 1, --output-tokens >= 2, --runs >= 1");
    }
    if (prompt_len_c + output_len > cfg.max_position_embeddings) return Fail("--prompt-tokens + --output-tokens exceed the context");
    std::vector<int> ns;
    for (absl::string_view part : absl::StrSplit(counts, ',', absl::SkipWhitespace())) {
      int v = 0;
      if (!absl::SimpleAtoi(part, &v) || v < 1) return Fail("--concurrency: '" + std::string(part) + "' is not a count >= 1");
      ns.push_back(v);
    }
    // Warm-up: pages the weights in.
    if (auto w = RunConcurrent(forward, cfg, 2, prompt_len_c, 4, 99); !w.ok()) return Fail(std::string(w.status().message()));
    nlohmann::json rows = nlohmann::json::array();
    double base = 0;
    if (!absl::GetFlag(FLAGS_json)) {
      std::cout << absl::StrFormat("model %s, experts %s, %d threads / %s, prompt %d, output %d tokens, best of %d\n",
                                   dir, workers, pool.num_threads(), moe::KernelIsa(), prompt_len_c, output_len, runs)
                << "concurrency  decode tok/s  (all runs)                    end-to-end tok/s  vs 1\n";
    }
    const std::string schema = absl::GetFlag(FLAGS_json_schema);
    std::unique_ptr<moe::grammar::TokenVocabulary> vocab;
    std::unique_ptr<moe::grammar::ConstraintCompiler> compiler;
    if (!schema.empty()) {
      auto v = moe::grammar::TokenVocabulary::FromDirectory(dir);
      if (!v.ok()) return Fail("--json-schema: " + std::string(v.status().message()));
      vocab = std::move(*v);
      compiler = std::make_unique<moe::grammar::ConstraintCompiler>(vocab.get());
    }
    for (int n : ns) {
      ConcurrencyFigures best, best_constrained;
      std::vector<double> all, all_constrained;
      for (int r = 0; r < runs; ++r) {
        auto f = RunConcurrent(forward, cfg, n, prompt_len_c, output_len, r + 1);
        if (!f.ok()) return Fail(std::string(f.status().message()));
        all.push_back(f->decode_tokens_per_s);
        if (f->decode_tokens_per_s > best.decode_tokens_per_s) best = *f;
        if (compiler == nullptr) continue;
        // Alternating: constrained right after unconstrained, same prompts.
        auto c = RunConcurrent(forward, cfg, n, prompt_len_c, output_len, r + 1, compiler.get(), schema);
        if (!c.ok()) return Fail(std::string(c.status().message()));
        all_constrained.push_back(c->decode_tokens_per_s);
        if (c->decode_tokens_per_s > best_constrained.decode_tokens_per_s) best_constrained = *c;
      }
      if (compiler != nullptr) {
        const double r = best.decode_tokens_per_s > 0 ? best_constrained.decode_tokens_per_s / best.decode_tokens_per_s : 0;
        std::string a, b;
        for (double v : all) a += absl::StrFormat("%.1f ", v);
        for (double v : all_constrained) b += absl::StrFormat("%.1f ", v);
        std::cout << absl::StrFormat("concurrency %d: unconstrained %.1f tok/s (%s), JSON schema %.1f tok/s (%s), "
                                     "ratio %.3f\n", n, best.decode_tokens_per_s, a, best_constrained.decode_tokens_per_s,
                                     b, r);
      }
      if (base == 0) base = best.decode_tokens_per_s;  // the first count (1) is the reference
      const double ratio = base > 0 ? best.decode_tokens_per_s / base : 0;
      rows.push_back({{"concurrency", n},
                      {"decode_tokens_per_s", best.decode_tokens_per_s},
                      {"decode_tokens_per_s_runs", all},
                      {"end_to_end_tokens_per_s", best.end_to_end_tokens_per_s},
                      {"steps", best.steps},
                      {"speedup_vs_1", ratio}});
      if (!absl::GetFlag(FLAGS_json)) {
        std::string runs_text;
        for (double v : all) runs_text += absl::StrFormat("%.1f ", v);
        std::cout << absl::StrFormat("%-12d %-13.1f (%-30s) %-17.1f %.2fx\n", n, best.decode_tokens_per_s, runs_text,
                                     best.end_to_end_tokens_per_s, ratio);
      }
    }
    if (absl::GetFlag(FLAGS_json)) {
      nlohmann::json j = {{"model", dir}, {"device", forward.name()}, {"expert_transport", transport},
                          {"experts", workers}, {"threads", pool.num_threads()}, {"busy_threads", busy},
                          {"kernel_isa", std::string(moe::KernelIsa())}, {"prompt_tokens", prompt_len_c},
                          {"output_tokens", output_len}, {"runs", runs}, {"results", rows}};
      std::cout << j.dump(2) << "\n";
    }
    return 0;
  }

  const int64_t bandwidth_bytes = int64_t{absl::GetFlag(FLAGS_bandwidth_mib)} << 20;
  double bandwidth = 0;
  if (dense_device->cuda) {
    auto b = moe::MeasureDeviceCopyBandwidth(dense_device->ordinal, bandwidth_bytes);
    if (!b.ok()) return Fail(std::string(b.status().message()));
    bandwidth = *b;
  } else {
    bandwidth = MeasureReadBandwidth(pool, static_cast<size_t>(bandwidth_bytes));
  }
  const int64_t active_bytes =
      (*dense)->ActiveDenseBytes() + per_expert * cfg.num_experts_per_tok * cfg.NumMoeLayers();

  std::vector<float> logits;
  // Room for the warm-up, the prefill and every sequence of the batched decode.
  auto made_cache =
      forward.CreateKvCache(moe::KvCache::OptionsForTokens(cfg, std::max(prefill_len, 34 + steps), batch + 3));
  if (!made_cache.ok()) return Fail(std::string(made_cache.status().message()));
  std::unique_ptr<moe::KvCache> cache = std::move(*made_cache);
  // Prefill.
  double prefill_tps;
  std::vector<double> prefill_runs_tps;
  {
    // Warm-up pass pages the weights in.
    moe::SequenceKv warm(cache.get());
    const auto p = SyntheticPrompt(64, 99, cfg.vocab_size);
    moe::SequenceInput in{&warm, p};
    if (auto s = forward.Forward({&in, 1}, &logits); !s.ok()) return Fail(std::string(s.message()));
    const auto prompt = SyntheticPrompt(prefill_len, 1, cfg.vocab_size);
    for (int r = 0; r < prefill_runs; ++r) {
      moe::SequenceKv kv(cache.get());  // its pages go back before the next run
      moe::SequenceInput pin{&kv, prompt};
      const auto t0 = Clock::now();
      if (auto s = forward.Forward({&pin, 1}, &logits); !s.ok()) return Fail(std::string(s.message()));
      prefill_runs_tps.push_back(prefill_len / Seconds(t0, Clock::now()));
    }
    std::vector<double> sorted = prefill_runs_tps;
    std::sort(sorted.begin(), sorted.end());
    const size_t n = sorted.size();
    prefill_tps = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
  // Decode at batch 1 and at batch N: every sequence has a 32-token prompt.
  auto decode = [&](int nseq) -> double {
    std::vector<std::unique_ptr<moe::SequenceKv>> kvs;
    std::vector<std::vector<int32_t>> prompts;
    std::vector<moe::SequenceInput> in;
    for (int s = 0; s < nseq; ++s) {
      kvs.push_back(std::make_unique<moe::SequenceKv>(cache.get()));
      prompts.push_back(SyntheticPrompt(32, s + 2, cfg.vocab_size));
      in.push_back({kvs.back().get(), prompts.back()});
    }
    if (!forward.Forward(in, &logits).ok()) return 0;
    std::vector<int32_t> next(nseq);
    auto pick = [&] {
      for (int s = 0; s < nseq; ++s) {
        const float* row = &logits[static_cast<size_t>(s) * cfg.vocab_size];
        next[s] = static_cast<int32_t>(std::max_element(row, row + cfg.vocab_size) - row);
        in[s].tokens = {&next[s], 1};
      }
    };
    pick();
    if (!forward.Forward(in, &logits).ok()) return 0;  // one untimed step
    pick();
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      if (!forward.Forward(in, &logits).ok()) return 0;
      pick();
    }
    return static_cast<double>(nseq) * steps / Seconds(t0, Clock::now());
  };
  // Send-to-reply time of the per-layer exchanges, per worker, over a phase.
  auto dispatch_since = [&](const std::vector<moe::RemoteExpertBackend::WorkerStats>& before) {
    nlohmann::json out = nlohmann::json::array();
    if (remote == nullptr) return out;
    const auto now = remote->Stats();
    for (size_t w = 0; w < now.size(); ++w) {
      const uint64_t calls = now[w].calls - before[w].calls;
      auto mean_us = [&](double total_now, double total_before) {
        return calls ? (total_now - total_before) / calls * 1e6 : 0.0;
      };
      out.push_back({{"worker", now[w].address},
                     {"calls", calls},
                     {"mean_us", mean_us(now[w].total_latency_s, before[w].total_latency_s)},
                     {"worker_queue_mean_us", mean_us(now[w].total_worker_queue_s, before[w].total_worker_queue_s)},
                     {"worker_compute_mean_us",
                      mean_us(now[w].total_worker_compute_s, before[w].total_worker_compute_s)}});
    }
    return out;
  };
  const auto before1 = remote ? remote->Stats() : std::vector<moe::RemoteExpertBackend::WorkerStats>{};
  const moe::ThreadPool::Stats pool_before = pool.stats();
  const double decode1 = decode(1);
  const moe::ThreadPool::Stats pool_after = pool.stats();
  const nlohmann::json dispatch1 = dispatch_since(before1);
  // The pool during the batch-1 decode: loops, loops a helper joined, and the
  // caller's waits for joined helpers after its own last chunk.
  const int64_t pool_loops = pool_after.loops - pool_before.loops;
  const nlohmann::json pool1 = {
      {"loops_per_token", static_cast<double>(pool_loops) / std::max(1, steps)},
      {"joined_fraction", static_cast<double>(pool_after.joined_loops - pool_before.joined_loops) / std::max<int64_t>(1, pool_loops)},
      {"waited_fraction", static_cast<double>(pool_after.waited_loops - pool_before.waited_loops) / std::max<int64_t>(1, pool_loops)},
      {"wait_ms_per_token", (pool_after.wait_ns - pool_before.wait_ns) / 1e6 / std::max(1, steps)}};
  const double decodeN = decode(batch);
  const double bound = bandwidth / static_cast<double>(active_bytes);
  const double efficiency = decode1 / bound;

  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"model", dir},
                        {"device", forward.name()},
                        {"expert_transport", transport},
                        {"threads", pool.num_threads()}, {"busy_threads", busy},
                        {"experts", workers},
                        {"kernel_isa", std::string(moe::KernelIsa())},
                        {"prefill_tokens", prefill_len},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"prefill_runs_tokens_per_s", prefill_runs_tps},
                        {"decode_batch1_tokens_per_s", decode1},
                        {"decode_batch", batch},
                        {"decode_batchN_tokens_per_s", decodeN},
                        {"read_bandwidth_gb_per_s", bandwidth / 1e9},
                        {"bandwidth_kind", dense_device->cuda ? "device-to-device copy (bytes read + written)"
                                                              : "host read"},
                        {"active_weight_bytes_per_token", active_bytes},
                        {"bandwidth_bound_tokens_per_s", bound},
                        {"decode_efficiency", efficiency}};
    if (remote != nullptr) j["dispatch_batch1"] = dispatch1;
    j["thread_pool_batch1"] = pool1;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat("model                      %s\n", dir)
              << absl::StrFormat("dense device               %s\n", forward.name())
              << absl::StrFormat("threads / kernels          %d / %s\n", pool.num_threads(), moe::KernelIsa())
              << absl::StrFormat("experts                    %s\n", workers)
              << absl::StrFormat("prefill (%d tokens)       %.1f tokens/s\n", prefill_len, prefill_tps)
              << absl::StrFormat("decode batch 1             %.2f tokens/s\n", decode1)
              << absl::StrFormat("decode batch %-3d           %.2f tokens/s\n", batch, decodeN)
              << absl::StrFormat("memory bandwidth           %.2f GB/s (%s)\n", bandwidth / 1e9,
                                 dense_device->cuda ? "device-to-device copy" : "host read")
              << absl::StrFormat("active weight bytes/token  %.1f MB\n", active_bytes / 1e6)
              << absl::StrFormat("bandwidth bound (batch 1)  %.2f tokens/s\n", bound)
              << absl::StrFormat("decode efficiency          %.1f%%\n", efficiency * 100);
    for (const auto& d : dispatch1) {
      std::cout << absl::StrFormat(
          "dispatch %-17s %d exchanges at batch 1, mean %.0f us (worker: %.0f us queued, %.0f us computing)\n",
          d["worker"].get<std::string>(), d["calls"].get<uint64_t>(), d["mean_us"].get<double>(),
          d["worker_queue_mean_us"].get<double>(), d["worker_compute_mean_us"].get<double>());
    }
  }
  return 0;
}
