// Metrics in the Prometheus text exposition format: a thread-safe
// fixed-bucket histogram and a writer that groups samples into families
// (one HELP and TYPE line each). No gRPC types; services render on scrape.
#ifndef MOE_CORE_METRICS_H_
#define MOE_CORE_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace moe {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> counts;  // per bucket, the last one is +Inf; not cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Get() const;

 private:
  mutable absl::Mutex mu_;
  Snapshot s_ ABSL_GUARDED_BY(mu_);
};

// Latency buckets from 100 us to 60 s, roughly 2.5x apart.
std::vector<double> LatencyBuckets();

class PrometheusText {
 public:
  // `name` without the unit suffixes Prometheus adds (_bucket, _sum, _count).
  void Counter(const std::string& name, const std::string& help, double value, const MetricLabels& labels = {});
  void Gauge(const std::string& name, const std::string& help, double value, const MetricLabels& labels = {});
  void Histogram(const std::string& name, const std::string& help, const Histogram::Snapshot& h,
                 const MetricLabels& labels = {});
  std::string str() const;

 private:
  struct Family {
    std::string help, type;
    std::vector<std::string> samples;
  };
  Family& Get(const std::string& name, const std::string& help, const std::string& type);

  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

}  // namespace moe

#endif  // MOE_CORE_METRICS_H_
