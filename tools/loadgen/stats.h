// Summary statistics of a run, computed from the per-request records:
// counts by status, token totals, throughputs, latency distributions, goodput
// and output tokens per second over time. Pure functions of their inputs.
#ifndef MOE_TOOLS_LOADGEN_STATS_H_
#define MOE_TOOLS_LOADGEN_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/loadgen/request.h"

namespace moe::loadgen {

// The p-th percentile (0..100) of ascending `sorted` by linear interpolation
// between closest ranks (numpy's default, as `vllm bench serve` reports):
// position p/100 * (n - 1). 0 for an empty input.
double Percentile(const std::vector<double>& sorted, double p);

// A latency distribution in milliseconds.
struct Distribution {
  size_t count = 0;
  double mean_ms = 0, median_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  std::vector<double> sorted_ms;  // every sample, ascending (for CDFs)
};
Distribution Distribute(std::vector<double> samples_ms);

struct SloOptions {
  double ttft_ms = 0;  // 0: no TTFT objective
  double tpot_ms = 0;  // 0: no TPOT objective
};

struct Summary {
  int64_t completed = 0;  // successful measured requests
  int64_t failed = 0;
  std::map<std::string, int64_t> status_counts;  // every measured request, "OK" included
  double duration_s = 0;  // first send to last completion of the measured requests
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;      // completed / duration, req/s
  double output_throughput = 0;       // output tokens / duration, tok/s
  double total_token_throughput = 0;  // (input + output) tokens / duration, tok/s
  Distribution ttft, tpot, itl, e2e;
  // Goodput: completed requests meeting every objective given, per second.
  bool has_slo = false;
  SloOptions slo;
  int64_t good_requests = 0;
  double goodput = 0;
  // Output tokens received per second in each second of the run, and requests
  // completed per second (the last, partial second as a rate over its width).
  std::vector<double> output_tokens_per_s;
  std::vector<double> completions_per_s;
  int max_in_flight = 0;  // most measured requests in flight at once
};

// Summarizes the non-warm-up records; `duration_s` spans their sends and
// completions, and the per-second series start at the first send.
Summary Summarize(const std::vector<RequestRecord>& records, const SloOptions& slo);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_STATS_H_
