// Inter-arrival times of an open-loop load: Poisson (exponential gaps) or
// gamma with shape = burstiness (burstiness < 1: burstier than Poisson, > 1:
// more even), both with mean 1 / rate. Deterministic for a seed (libstdc++).
// Not thread-safe: the runner's scheduling thread owns it.
#ifndef MOE_TOOLS_LOADGEN_ARRIVALS_H_
#define MOE_TOOLS_LOADGEN_ARRIVALS_H_

#include <cstdint>
#include <random>
#include <string>

namespace moe::loadgen {

struct ArrivalOptions {
  // Mean requests per second; +infinity sends every request at once.
  double request_rate_per_s = 1.0;
  // Gamma shape k: the squared coefficient of variation of the gaps is 1/k.
  // 1 is a Poisson process.
  double burstiness = 1.0;
  uint64_t seed = 0;
};

class ArrivalProcess {
 public:
  explicit ArrivalProcess(const ArrivalOptions& options);
  // Seconds until the next arrival.
  double NextGapSeconds();
  // "Poisson, 4.00 req/s", "gamma (burstiness 0.50), 4.00 req/s", "all at once".
  std::string Describe() const;

 private:
  ArrivalOptions options_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exponential_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_ARRIVALS_H_
