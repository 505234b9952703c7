// The prompts of a run: synthetic token-id prompts with lengths drawn from
// uniform ranges, or text prompts read from a JSONL file and cycled.
// Deterministic for a seed. Not thread-safe: the runner's scheduling thread
// owns it.
#ifndef MOE_TOOLS_LOADGEN_WORKLOAD_H_
#define MOE_TOOLS_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/loadgen/request.h"

namespace moe::loadgen {

struct WorkloadOptions {
  // JSONL file of {"prompt": "...", "max_tokens": N} lines; empty: synthetic.
  std::string jsonl_path;
  // Synthetic prompt length in tokens, drawn uniformly from
  // [len * (1 - range), len * (1 + range)] (at least 1).
  int input_len_tokens = 128;
  double input_len_range = 0;
  // max_tokens of every request (JSONL lines without max_tokens too), drawn
  // the same way.
  int output_len_tokens = 128;
  double output_len_range = 0;
  // Synthetic ids are drawn uniformly from [0, vocab_size) minus `excluded_ids`
  // (the model's eos ids, so that prompts do not look finished).
  uint32_t vocab_size = 0;
  std::vector<uint32_t> excluded_ids;
  bool ignore_eos = true;
  double temperature = 0;
  int64_t timeout_ms = 300000;
  uint64_t seed = 0;
};

// One line of a JSONL workload.
struct JsonlPrompt {
  std::string prompt;
  int max_tokens = 0;  // 0: the workload's output length
};

// Parses JSONL text; INVALID_ARGUMENT naming `source` and the line number on a
// malformed line, a line without a string "prompt", or an empty file.
absl::StatusOr<std::vector<JsonlPrompt>> ParseJsonlPrompts(const std::string& text, const std::string& source);

class Workload {
 public:
  // Reads the JSONL file (if any); INVALID_ARGUMENT for a synthetic workload
  // without a vocabulary or with non-positive lengths.
  static absl::StatusOr<Workload> Create(const WorkloadOptions& options);

  // The next request (index and warm-up flag set by the caller).
  RequestSpec Next();
  // "synthetic: input 128 ± 0%, output 128 ± 0% tokens" or "jsonl: FILE (N prompts)".
  std::string Describe() const;

 private:
  explicit Workload(const WorkloadOptions& options);
  int DrawLength(int len, double range);

  WorkloadOptions options_;
  std::vector<JsonlPrompt> prompts_;
  size_t next_prompt_ = 0;
  std::vector<uint32_t> allowed_ids_;
  std::mt19937_64 rng_;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_WORKLOAD_H_
