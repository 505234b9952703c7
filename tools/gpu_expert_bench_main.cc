// moe-gpu-expert-bench: one MoE layer's experts on the GPU through the
// CudaExpertRunner (what an expert worker runs per exchange: gather, copy in,
// GEMMs, SiLU·mul, copy out), with the device's own ceilings measured in the
// same run: device-to-device copy bandwidth and a dense bf16 GEMM's TFLOP/s.
//
//   moe-gpu-expert-bench [--hidden 4096] [--ffn 14336] [--experts 8] [--top-k 2]
//                        [--tokens 1,4,16,64,256,1024,4096] [--iterations 20] [--device 0] [--json PATH]
//
// Weights are random bf16 (never zeros), tokens routed uniformly at random to
// top-k distinct experts with a fixed seed. Time per layer is the median of
// --iterations calls after 3 warm-up calls.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "experts/cuda_expert_runner.h"
#include "experts/ffn_math.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(int64_t, hidden, 4096, "hidden size");
ABSL_FLAG(int64_t, ffn, 14336, "FFN size of each expert");
ABSL_FLAG(int, experts, 8, "experts in the layer");
ABSL_FLAG(int, top_k, 2, "experts per token");
ABSL_FLAG(std::string, tokens, "1,4,16,64,256,1024,4096", "tokens per layer to time");
ABSL_FLAG(int, iterations, 20, "timed calls per size (median reported)");
ABSL_FLAG(int, device, 0, "CUDA device ordinal");
ABSL_FLAG(std::string, json, "", "also write the results here");

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& what) {
  std::cerr << "moe-gpu-expert-bench: " << what << "\n";
  return 1;
}

#define CHECK_CUDA(call)                                                                                   \
  do {                                                                                                     \
    const cudaError_t e = (call);                                                                          \
    if (e != cudaSuccess) return Fail(std::string(#call) + ": " + cudaGetErrorString(e));                  \
  } while (0)
#define CHECK_CUBLAS(call)                                                                                 \
  do {                                                                                                     \
    const cublasStatus_t s = (call);                                                                       \
    if (s != CUBLAS_STATUS_SUCCESS) return Fail(std::string(#call) + ": " + cublasGetStatusString(s));     \
  } while (0)

// Random bf16 with standard deviation `scale`, filled by every CPU.
void FillRandomBf16(std::vector<uint16_t>* v, float scale, uint64_t seed) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  const size_t n = v->size(), per = (n + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([=] {
      std::mt19937_64 rng(seed * 1000003 + t);
      std::uniform_real_distribution<float> u(-1.7320508f * scale, 1.7320508f * scale);  // variance scale²
      for (size_t i = t * per; i < std::min(n, (t + 1) * per); ++i) (*v)[i] = moe::F32ToBf16Rne(u(rng));
    });
  }
  for (auto& th : pool) th.join();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const int64_t h = absl::GetFlag(FLAGS_hidden), f = absl::GetFlag(FLAGS_ffn);
  const int E = absl::GetFlag(FLAGS_experts), K = absl::GetFlag(FLAGS_top_k);
  const int iterations = absl::GetFlag(FLAGS_iterations), ordinal = absl::GetFlag(FLAGS_device);
  std::vector<int64_t> token_counts;
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_tokens), ',', absl::SkipEmpty())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(t, &n) || n < 1 || n > (1 << 20)) return Fail("--tokens: bad count '" + std::string(t) + "'");
    token_counts.push_back(n);
  }
  if (h < 1 || f < 1 || E < 1 || K < 1 || K > E || iterations < 1) return Fail("bad sizes");

  CHECK_CUDA(cudaSetDevice(ordinal));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, ordinal));

  // Ceiling 1: device-to-device copy, bytes read + written per second.
  double copy_gbps = 0;
  {
    const size_t bytes = size_t{2} << 30;
    void *a = nullptr, *b = nullptr;
    CHECK_CUDA(cudaMalloc(&a, bytes));
    CHECK_CUDA(cudaMalloc(&b, bytes));
    CHECK_CUDA(cudaMemset(a, 1, bytes));
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int i = 0; i < 13; ++i) {
      CHECK_CUDA(cudaEventRecord(e0));
      CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float t = 0;
      CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
      if (i >= 3) ms.push_back(t);
    }
    copy_gbps = 2.0 * static_cast<double>(bytes) / (Median(ms) * 1e-3) / 1e9;
    cudaFree(a);
    cudaFree(b);
  }
  // Ceiling 2: a dense 8192³ bf16 GEMM (f32 accumulate) on random data.
  double gemm_tflops = 0;
  {
    const int64_t n = 8192;
    std::vector<uint16_t> host(static_cast<size_t>(n * n));
    FillRandomBf16(&host, 1.0f, 7);
    void *a = nullptr, *b = nullptr, *c = nullptr;
    CHECK_CUDA(cudaMalloc(&a, host.size() * 2));
    CHECK_CUDA(cudaMalloc(&b, host.size() * 2));
    CHECK_CUDA(cudaMalloc(&c, host.size() * 2));
    CHECK_CUDA(cudaMemcpy(a, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(b, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
    cublasHandle_t handle;
    CHECK_CUBLAS(cublasCreate(&handle));
    const float one = 1, zero = 0;
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int i = 0; i < 13; ++i) {
      CHECK_CUDA(cudaEventRecord(e0));
      CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n,
                                &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float t = 0;
      CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
      if (i >= 3) ms.push_back(t);
    }
    gemm_tflops = 2.0 * n * n * n / (Median(ms) * 1e-3) / 1e12;
    cublasDestroy(handle);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
  }

  // The layer: random bf16 experts, as a shard over host memory.
  moe::ModelConfig c;
  c.hidden_size = h;
  c.intermediate_size = f;
  c.num_hidden_layers = 1;
  c.num_experts = E;
  c.num_experts_per_tok = K;
  std::vector<std::vector<uint16_t>> w1(E), w2(E), w3(E);
  std::map<moe::ExpertKey, moe::FfnWeights> views;
  for (int e = 0; e < E; ++e) {
    w1[e].resize(static_cast<size_t>(f * h));
    w3[e].resize(static_cast<size_t>(f * h));
    w2[e].resize(static_cast<size_t>(h * f));
    FillRandomBf16(&w1[e], 1.0f / std::sqrt(static_cast<float>(h)), 3 * e + 1);
    FillRandomBf16(&w3[e], 1.0f / std::sqrt(static_cast<float>(h)), 3 * e + 2);
    FillRandomBf16(&w2[e], 1.0f / std::sqrt(static_cast<float>(f)), 3 * e + 3);
    moe::FfnWeights w;
    w.gate = {w1[e].data(), moe::DType::kBF16, f, h};
    w.up = {w3[e].data(), moe::DType::kBF16, f, h};
    w.down = {w2[e].data(), moe::DType::kBF16, h, f};
    views[{0, e}] = w;
  }
  auto runner = moe::MakeCudaExpertRunner(moe::ExpertShard::FromWeights(c, std::move(views)), ordinal);
  if (!runner.ok()) return Fail(std::string(runner.status().message()));

  std::printf("device %s; copy %.0f GB/s, dense bf16 GEMM %.0f TFLOP/s (measured now)\n",
              (*runner)->device().c_str(), copy_gbps, gemm_tflops);
  std::printf("layer: hidden %lld, ffn %lld, %d experts, top-%d, bf16\n", static_cast<long long>(h),
              static_cast<long long>(f), E, K);
  std::printf("%8s %8s %10s %12s %8s %10s %8s\n", "tokens", "experts", "ms/layer", "weight GB/s", "of copy",
              "TFLOP/s", "of GEMM");
  nlohmann::json rows = nlohmann::json::array();
  std::mt19937 rng(42);
  for (int64_t tokens : token_counts) {
    std::vector<uint32_t> ids;
    std::vector<char> used(E, 0);
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<int> order(E);
      for (int e = 0; e < E; ++e) order[e] = e;
      std::shuffle(order.begin(), order.end(), rng);
      for (int k = 0; k < K; ++k) {
        ids.push_back(static_cast<uint32_t>(order[k]));
        used[order[k]] = 1;
      }
    }
    std::vector<float> x(static_cast<size_t>(tokens * h));
    std::normal_distribution<float> z(0, 1);
    for (float& v : x) v = z(rng);
    std::vector<float> out(ids.size() * static_cast<size_t>(h));
    moe::ExpertRows r;
    r.layer = 0;
    r.hidden = h;
    r.num_rows = static_cast<int64_t>(ids.size());
    r.x = x.data();
    r.repeat = K;
    r.expert_ids = ids.data();
    std::vector<double> ms;
    for (int i = 0; i < iterations + 3; ++i) {
      const auto t0 = Clock::now();
      const absl::Status s = (*runner)->Run(r, out.data());
      const double dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!s.ok()) return Fail(std::string(s.message()));
      if (i >= 3) ms.push_back(dt);
    }
    const double t = Median(ms);
    int experts_used = 0;
    for (char u : used) experts_used += u;
    const double bytes = static_cast<double>(experts_used) * 3 * h * f * 2;
    const double flops = 2.0 * static_cast<double>(ids.size()) * 3 * h * f;
    const double gbps = bytes / (t * 1e-3) / 1e9, tflops = flops / (t * 1e-3) / 1e12;
    std::printf("%8lld %8d %10.3f %12.0f %7.0f%% %10.1f %7.0f%%\n", static_cast<long long>(tokens), experts_used, t,
                gbps, 100 * gbps / copy_gbps, tflops, 100 * tflops / gemm_tflops);
    rows.push_back({{"tokens", tokens}, {"experts_with_rows", experts_used}, {"ms_per_layer", t},
                    {"weight_gbps", gbps}, {"tflops", tflops}});
  }
  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (!json_path.empty()) {
    nlohmann::json j = {{"device", (*runner)->device()}, {"copy_gbps", copy_gbps}, {"dense_gemm_tflops", gemm_tflops},
                        {"hidden", h}, {"ffn", f}, {"experts", E}, {"top_k", K}, {"rows", rows}};
    std::ofstream(json_path) << j.dump(2) << "\n";
  }
  return 0;
}
