#include "tools/loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace moe::loadgen {

absl::StatusOr<std::vector<JsonlPrompt>> ParseJsonlPrompts(const std::string& text, const std::string& source) {
  std::vector<JsonlPrompt> prompts;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": not a JSON object"));
    }
    auto p = j.find("prompt");
    if (p == j.end() || !p->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": no string \"prompt\""));
    }
    JsonlPrompt prompt{p->get<std::string>(), 0};
    if (auto m = j.find("max_tokens"); m != j.end() && !m->is_null()) {
      if (!m->is_number_integer() || m->get<int64_t>() <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ":", line_number, ": \"max_tokens\" must be a positive integer"));
      }
      prompt.max_tokens = m->get<int>();
    }
    prompts.push_back(std::move(prompt));
  }
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no prompts"));
  return prompts;
}

Workload::Workload(const WorkloadOptions& options) : options_(options), rng_(options.seed) {}

absl::StatusOr<Workload> Workload::Create(const WorkloadOptions& options) {
  if (options.output_len_tokens <= 0) return absl::InvalidArgumentError("--output-len must be positive");
  if (options.input_len_range < 0 || options.input_len_range >= 1 || options.output_len_range < 0 ||
      options.output_len_range >= 1) {
    return absl::InvalidArgumentError("--input-len-range and --output-len-range must be in [0, 1)");
  }
  Workload w(options);
  if (!options.jsonl_path.empty()) {
    std::ifstream in(options.jsonl_path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat(options.jsonl_path, ": cannot open"));
    std::stringstream ss;
    ss << in.rdbuf();
    auto prompts = ParseJsonlPrompts(ss.str(), options.jsonl_path);
    if (!prompts.ok()) return prompts.status();
    w.prompts_ = std::move(*prompts);
    return w;
  }
  if (options.input_len_tokens <= 0) return absl::InvalidArgumentError("--input-len must be positive");
  if (options.vocab_size == 0) return absl::InvalidArgumentError("synthetic prompts need the vocabulary size");
  for (uint32_t id = 0; id < options.vocab_size; ++id) {
    if (std::find(options.excluded_ids.begin(), options.excluded_ids.end(), id) == options.excluded_ids.end()) {
      w.allowed_ids_.push_back(id);
    }
  }
  if (w.allowed_ids_.empty()) return absl::InvalidArgumentError("no token ids left to draw prompts from");
  return w;
}

int Workload::DrawLength(int len, double range) {
  if (range == 0) return len;
  const int lo = std::max(1, static_cast<int>(std::floor(len * (1 - range))));
  const int hi = std::max(lo, static_cast<int>(std::ceil(len * (1 + range))));
  return std::uniform_int_distribution<int>(lo, hi)(rng_);
}

RequestSpec Workload::Next() {
  RequestSpec spec;
  spec.ignore_eos = options_.ignore_eos;
  spec.temperature = options_.temperature;
  spec.timeout_ms = options_.timeout_ms;
  if (!prompts_.empty()) {
    const JsonlPrompt& p = prompts_[next_prompt_];
    next_prompt_ = (next_prompt_ + 1) % prompts_.size();
    spec.text = p.prompt;
    spec.max_tokens = p.max_tokens > 0 ? p.max_tokens : DrawLength(options_.output_len_tokens, options_.output_len_range);
    return spec;
  }
  const int input_len = DrawLength(options_.input_len_tokens, options_.input_len_range);
  spec.max_tokens = DrawLength(options_.output_len_tokens, options_.output_len_range);
  std::uniform_int_distribution<size_t> pick(0, allowed_ids_.size() - 1);
  spec.token_ids.reserve(input_len);
  for (int i = 0; i < input_len; ++i) spec.token_ids.push_back(allowed_ids_[pick(rng_)]);
  return spec;
}

std::string Workload::Describe() const {
  if (!prompts_.empty()) {
    return absl::StrFormat("jsonl: %s (%d prompts)", options_.jsonl_path, prompts_.size());
  }
  return absl::StrFormat("synthetic: input %d ± %.0f%%, output %d ± %.0f%% tokens", options_.input_len_tokens,
                         options_.input_len_range * 100, options_.output_len_tokens, options_.output_len_range * 100);
}

}  // namespace moe::loadgen
