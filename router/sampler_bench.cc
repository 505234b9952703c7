// Benchmark of the sampler alone: per-sequence time at vocabularies of 32k and
// 152k, batch 1 and 64 (a batch is 64 sequences, each with its own sampler).
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "router/sampler.h"

namespace moe {
namespace {

// Logits shaped like a language model's: a broad normal body and a few
// strong candidates ("peaked", most of the mass on the candidates), or the
// body alone ("flat": top-p 0.9 then keeps most of the vocabulary — the
// worst case for selection).
bool g_flat = false;
std::vector<float> MakeLogits(int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> body(0.0f, 2.0f);
  std::vector<float> l(vocab);
  for (auto& v : l) v = body(rng);
  if (g_flat) return l;
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  for (int i = 0; i < 8; ++i) l[pick(rng)] = 20.0f - static_cast<float>(i);
  return l;
}

void Run(benchmark::State& state, SamplingOptions o) {
  const int64_t vocab = state.range(0);
  const int batch = static_cast<int>(state.range(1));
  std::vector<std::vector<float>> rows;
  std::vector<Sampler> samplers;
  for (int b = 0; b < batch; ++b) {
    rows.push_back(MakeLogits(vocab, static_cast<uint32_t>(b + 1)));
    o.seed = b;
    samplers.emplace_back(o, absl::Span<const int32_t>(), std::vector<int32_t>());
  }
  for (auto _ : state) {
    for (int b = 0; b < batch; ++b) benchmark::DoNotOptimize(samplers[b].Sample(rows[b]));
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["per_seq"] = benchmark::Counter(static_cast<double>(state.iterations()) * batch,
                                                 benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Greedy(benchmark::State& state) {
  SamplingOptions o;
  o.temperature = 0;
  Run(state, o);
}
void BM_TopP09(benchmark::State& state) {
  SamplingOptions o;
  o.top_p = 0.9f;
  Run(state, o);
}
void BM_TopP09Flat(benchmark::State& state) {
  SamplingOptions o;
  o.top_p = 0.9f;
  g_flat = true;
  Run(state, o);
  g_flat = false;
}
void BM_TopK50Temp08(benchmark::State& state) {
  SamplingOptions o;
  o.top_k = 50;
  o.temperature = 0.8f;
  Run(state, o);
}
void BM_TopP09Penalties(benchmark::State& state) {
  SamplingOptions o;
  o.top_p = 0.9f;
  o.repetition_penalty = 1.1f;
  o.frequency_penalty = 0.2f;
  Run(state, o);
}

#define MOE_SAMPLER_ARGS ->Args({32000, 1})->Args({32000, 64})->Args({151936, 1})->Args({151936, 64})->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_Greedy) MOE_SAMPLER_ARGS;
BENCHMARK(BM_TopP09) MOE_SAMPLER_ARGS;
BENCHMARK(BM_TopP09Flat) MOE_SAMPLER_ARGS;
BENCHMARK(BM_TopK50Temp08) MOE_SAMPLER_ARGS;
BENCHMARK(BM_TopP09Penalties) MOE_SAMPLER_ARGS;

}  // namespace
}  // namespace moe

BENCHMARK_MAIN();
