#include "tools/loadgen/prometheus.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "httplib.h"

namespace moe::loadgen {

namespace {

bool ParseValue(absl::string_view text, double* value) {
  if (text == "+Inf" || text == "Inf") {
    *value = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *value = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    *value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return absl::SimpleAtod(text, value);
}

// Parses `{k="v",...}` at `line[*pos]` (just after the '{').
bool ParseLabels(absl::string_view line, size_t* pos, std::map<std::string, std::string>* labels) {
  size_t i = *pos;
  auto skip_space = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  for (;;) {
    skip_space();
    if (i < line.size() && line[i] == '}') {
      *pos = i + 1;
      return true;
    }
    const size_t start = i;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
    if (i == start) return false;
    const std::string key(line.substr(start, i - start));
    skip_space();
    if (i >= line.size() || line[i] != '=') return false;
    ++i;
    skip_space();
    if (i >= line.size() || line[i] != '"') return false;
    ++i;
    std::string value;
    for (;;) {
      if (i >= line.size()) return false;
      const char c = line[i++];
      if (c == '"') break;
      if (c == '\\') {
        if (i >= line.size()) return false;
        const char e = line[i++];
        value.push_back(e == 'n' ? '\n' : e);
      } else {
        value.push_back(c);
      }
    }
    (*labels)[key] = std::move(value);
    skip_space();
    if (i < line.size() && line[i] == ',') ++i;
  }
}

std::string Label(const MetricSample& s, const std::string& key) {
  auto it = s.labels.find(key);
  return it == s.labels.end() ? std::string() : it->second;
}

}  // namespace

absl::StatusOr<std::vector<MetricSample>> ParsePrometheusText(const std::string& text) {
  std::vector<MetricSample> samples;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    MetricSample s;
    size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) {
      ++i;
    }
    s.name = std::string(line.substr(0, i));
    bool ok = !s.name.empty();
    if (ok && i < line.size() && line[i] == '{') {
      ++i;
      ok = ParseLabels(line, &i, &s.labels);
    }
    if (ok) {
      // The value, then an optional timestamp.
      std::vector<absl::string_view> rest =
          absl::StrSplit(line.substr(i), absl::ByAnyChar(" \t"), absl::SkipEmpty());
      ok = !rest.empty() && rest.size() <= 2 && ParseValue(rest[0], &s.value);
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_number, ": cannot parse '", line, "'"));
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

absl::StatusOr<std::string> FetchMetricsText(const std::string& url, int64_t timeout_ms) {
  std::string base = url, path = "/metrics";
  if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://")) base = "http://" + base;
  const size_t scheme_end = base.find("://") + 3;
  if (const size_t slash = base.find('/', scheme_end); slash != std::string::npos) {
    if (slash + 1 < base.size()) path = base.substr(slash);
    base = base.substr(0, slash);
  }
  httplib::Client client(base);
  client.set_connection_timeout(std::chrono::milliseconds(timeout_ms));
  client.set_read_timeout(std::chrono::milliseconds(timeout_ms));
  httplib::Result res = client.Get(path);
  if (!res) return absl::UnavailableError(absl::StrCat(base, path, ": ", httplib::to_string(res.error())));
  if (res->status != 200) return absl::UnavailableError(absl::StrCat(base, path, ": HTTP ", res->status));
  return res->body;
}

void AddRouterMetrics(const std::vector<MetricSample>& samples, RouterLoad* load) {
  std::map<std::string, WorkerDispatch> workers;
  uint32_t layers = 0, experts = 0;
  std::vector<std::tuple<uint32_t, uint32_t, double>> expert_tokens;
  for (const MetricSample& s : samples) {
    if (absl::StartsWith(s.name, "moe_dispatch_latency_seconds_") || s.name == "moe_dispatch_failures_total") {
      const std::string address = Label(s, "worker");
      WorkerDispatch& w = workers[address];
      w.address = address;
      if (s.name == "moe_dispatch_latency_seconds_count") {
        w.calls = static_cast<uint64_t>(s.value);
      } else if (s.name == "moe_dispatch_latency_seconds_sum") {
        w.total_latency_s = s.value;
      } else if (s.name == "moe_dispatch_latency_seconds_bucket") {
        double le;
        if (ParseValue(Label(s, "le"), &le)) w.buckets.emplace_back(le, s.value);
      } else {
        w.failures = static_cast<uint64_t>(s.value);
      }
    } else if (s.name == "moe_expert_tokens_total") {
      uint32_t layer, expert;
      if (absl::SimpleAtoi(Label(s, "layer"), &layer) && absl::SimpleAtoi(Label(s, "expert"), &expert)) {
        layers = std::max(layers, layer + 1);
        experts = std::max(experts, expert + 1);
        expert_tokens.emplace_back(layer, expert, s.value);
      }
    }
  }
  if (!workers.empty()) {
    load->dispatch_reported = true;
    load->dispatch.clear();
    for (auto& [address, w] : workers) {
      std::sort(w.buckets.begin(), w.buckets.end());
      load->dispatch.push_back(std::move(w));
    }
  }
  if (load->expert_tokens.empty() && !expert_tokens.empty()) {
    load->num_layers = layers;
    load->num_experts = experts;
    load->expert_tokens.assign(static_cast<size_t>(layers) * experts, 0);
    for (const auto& [layer, expert, value] : expert_tokens) {
      load->expert_tokens[static_cast<size_t>(layer) * experts + expert] = static_cast<uint64_t>(value);
    }
  }
}

}  // namespace moe::loadgen
