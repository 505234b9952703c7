#include "core/metrics.h"

#include <cmath>
#include <sstream>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moe {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string LabelText(const MetricLabels& labels, const std::string& extra_key = "", const std::string& extra = "") {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(absl::StrCat(k, "=\"", Escape(v), "\""));
  if (!extra_key.empty()) parts.push_back(absl::StrCat(extra_key, "=\"", extra, "\""));
  if (parts.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
  return s + "}";
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return absl::StrFormat("%.17g", v);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds) {
  s_.upper_bounds = std::move(upper_bounds);
  s_.counts.assign(s_.upper_bounds.size() + 1, 0);
}

void Histogram::Observe(double value) {
  absl::MutexLock lock(&mu_);
  size_t i = 0;
  while (i < s_.upper_bounds.size() && value > s_.upper_bounds[i]) ++i;
  ++s_.counts[i];
  s_.sum += value;
  ++s_.count;
}

Histogram::Snapshot Histogram::Get() const {
  absl::MutexLock lock(&mu_);
  return s_;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 20.0,  60.0};
}

PrometheusText::Family& PrometheusText::Get(const std::string& name, const std::string& help,
                                            const std::string& type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    order_.push_back(name);
    it = families_.emplace(name, Family{help, type, {}}).first;
  }
  return it->second;
}

void PrometheusText::Counter(const std::string& name, const std::string& help, double value,
                             const MetricLabels& labels) {
  Get(name, help, "counter").samples.push_back(absl::StrCat(name, LabelText(labels), " ", Number(value)));
}

void PrometheusText::Gauge(const std::string& name, const std::string& help, double value,
                           const MetricLabels& labels) {
  Get(name, help, "gauge").samples.push_back(absl::StrCat(name, LabelText(labels), " ", Number(value)));
}

void PrometheusText::Histogram(const std::string& name, const std::string& help, const Histogram::Snapshot& h,
                               const MetricLabels& labels) {
  Family& f = Get(name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    const std::string le = i < h.upper_bounds.size() ? Number(h.upper_bounds[i]) : "+Inf";
    f.samples.push_back(absl::StrCat(name, "_bucket", LabelText(labels, "le", le), " ", cumulative));
  }
  f.samples.push_back(absl::StrCat(name, "_sum", LabelText(labels), " ", Number(h.sum)));
  f.samples.push_back(absl::StrCat(name, "_count", LabelText(labels), " ", h.count));
}

std::string PrometheusText::str() const {
  std::string out;
  for (const std::string& name : order_) {
    const Family& f = families_.at(name);
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name, " ", f.type, "\n");
    for (const std::string& s : f.samples) absl::StrAppend(&out, s, "\n");
  }
  return out;
}

}  // namespace moe
