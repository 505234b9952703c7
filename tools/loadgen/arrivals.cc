#include "tools/loadgen/arrivals.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace moe::loadgen {

ArrivalProcess::ArrivalProcess(const ArrivalOptions& options)
    : options_(options),
      rng_(options.seed),
      exponential_(std::isfinite(options.request_rate_per_s) ? options.request_rate_per_s : 1.0),
      // Shape k and scale 1/(rate k): mean 1/rate, variance 1/(rate^2 k).
      gamma_(options.burstiness,
             std::isfinite(options.request_rate_per_s) ? 1.0 / (options.request_rate_per_s * options.burstiness)
                                                       : 1.0) {}

double ArrivalProcess::NextGapSeconds() {
  if (!std::isfinite(options_.request_rate_per_s)) return 0;
  if (options_.burstiness == 1.0) return exponential_(rng_);
  return gamma_(rng_);
}

std::string ArrivalProcess::Describe() const {
  if (!std::isfinite(options_.request_rate_per_s)) return "all at once";
  if (options_.burstiness == 1.0) return absl::StrFormat("Poisson, %.2f req/s", options_.request_rate_per_s);
  return absl::StrFormat("gamma (burstiness %.2f), %.2f req/s", options_.burstiness, options_.request_rate_per_s);
}

}  // namespace moe::loadgen
