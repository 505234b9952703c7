#include "tools/loadgen/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace moe::loadgen {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Distribution Distribute(std::vector<double> samples_ms) {
  Distribution d;
  std::sort(samples_ms.begin(), samples_ms.end());
  d.count = samples_ms.size();
  if (!samples_ms.empty()) {
    d.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / static_cast<double>(d.count);
    d.median_ms = Percentile(samples_ms, 50);
    d.p90_ms = Percentile(samples_ms, 90);
    d.p99_ms = Percentile(samples_ms, 99);
    d.max_ms = samples_ms.back();
  }
  d.sorted_ms = std::move(samples_ms);
  return d;
}

Summary Summarize(const std::vector<RequestRecord>& records, const SloOptions& slo) {
  Summary s;
  s.slo = slo;
  s.has_slo = slo.ttft_ms > 0 || slo.tpot_ms > 0;
  double start = 0, end = 0;
  bool any = false;
  std::vector<double> ttft, tpot, itl, e2e;
  std::vector<std::pair<double, int>> in_flight_changes;  // (time, +1 / -1)
  for (const RequestRecord& r : records) {
    if (r.warmup) continue;
    ++s.status_counts[r.status];
    start = any ? std::min(start, r.sent_s) : r.sent_s;
    end = any ? std::max(end, r.done_s) : r.done_s;
    any = true;
    in_flight_changes.emplace_back(r.sent_s, 1);
    in_flight_changes.emplace_back(r.done_s, -1);
    if (!r.ok) {
      ++s.failed;
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_tokens;
    s.total_output_tokens += r.output_tokens;
    const double ttft_ms = r.ttft_s() * 1000;
    const double tpot_ms = r.tpot_s() * 1000;
    if (r.first_token_s >= 0) ttft.push_back(ttft_ms);
    if (r.output_tokens > 1) tpot.push_back(tpot_ms);
    e2e.push_back(r.e2e_s() * 1000);
    for (size_t i = 1; i < r.events.size(); ++i) itl.push_back((r.events[i].time_s - r.events[i - 1].time_s) * 1000);
    const bool ttft_good = slo.ttft_ms <= 0 || (r.first_token_s >= 0 && ttft_ms <= slo.ttft_ms);
    const bool tpot_good = slo.tpot_ms <= 0 || r.output_tokens <= 1 || tpot_ms <= slo.tpot_ms;
    if (ttft_good && tpot_good) ++s.good_requests;
  }
  s.duration_s = any ? end - start : 0;
  if (s.duration_s > 0) {
    s.request_throughput = static_cast<double>(s.completed) / s.duration_s;
    s.output_throughput = static_cast<double>(s.total_output_tokens) / s.duration_s;
    s.total_token_throughput = static_cast<double>(s.total_input_tokens + s.total_output_tokens) / s.duration_s;
    if (s.has_slo) s.goodput = static_cast<double>(s.good_requests) / s.duration_s;
  }
  s.ttft = Distribute(std::move(ttft));
  s.tpot = Distribute(std::move(tpot));
  s.itl = Distribute(std::move(itl));
  s.e2e = Distribute(std::move(e2e));

  // Completions before starts at equal times, so that back-to-back requests
  // do not count twice.
  std::sort(in_flight_changes.begin(), in_flight_changes.end());
  int in_flight = 0;
  for (const auto& [t, delta] : in_flight_changes) {
    in_flight += delta;
    s.max_in_flight = std::max(s.max_in_flight, in_flight);
  }

  if (any) {
    const size_t buckets = static_cast<size_t>(std::floor(s.duration_s)) + 1;
    s.output_tokens_per_s.assign(buckets, 0);
    s.completions_per_s.assign(buckets, 0);
    auto bucket = [&](double t) { return std::min(buckets - 1, static_cast<size_t>(std::max(0.0, t - start))); };
    for (const RequestRecord& r : records) {
      if (r.warmup || !r.ok) continue;
      for (const TokenEvent& e : r.events) s.output_tokens_per_s[bucket(e.time_s)] += e.tokens;
      s.completions_per_s[bucket(r.done_s)] += 1;
    }
    // The last second is partial: its counts become a rate over its width,
    // and a sliver under 0.1 s is left out (too short to be a rate).
    const double last_width = s.duration_s - static_cast<double>(buckets - 1);
    if (last_width < 0.1 && buckets > 1) {
      s.output_tokens_per_s.pop_back();
      s.completions_per_s.pop_back();
    } else if (last_width < 1) {
      s.output_tokens_per_s.back() /= std::max(last_width, 0.1);
      s.completions_per_s.back() /= std::max(last_width, 0.1);
    }
  }
  return s;
}

}  // namespace moe::loadgen
