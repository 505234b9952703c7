// The library behind `moe-model`: make a tiny random Mixtral checkpoint for
// tests and demos, and summarise a checkpoint directory.
//
// Plain functions over options structs; no flags, no global state. Safe to call
// from any thread (two calls must not write the same directory at once).
#ifndef MOE_TOOLS_MODEL_TOOL_H_
#define MOE_TOOLS_MODEL_TOOL_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace moe {

// A Mixtral-architecture checkpoint with random weights. The defaults give the
// shape of tests/testdata/tiny-mixtral (and the same config.json and tokenizer
// files, byte for byte). Field names match the `moe-model make-tiny` flags.
struct MakeTinyOptions {
  // Directory to write config.json, model.safetensors, tokenizer.json and
  // tokenizer_config.json into; created if missing, those files replaced.
  std::string out_dir;
  // Same seed and sizes give byte-identical files on every platform: weights
  // come from our own PRNG and basic IEEE-754 arithmetic only.
  uint64_t seed = 1;
  int64_t hidden = 128;   // hidden_size; head_dim = hidden / heads
  int64_t layers = 2;     // num_hidden_layers
  int64_t heads = 4;      // num_attention_heads
  int64_t kv_heads = 2;   // num_key_value_heads; must divide heads
  int64_t experts = 4;    // num_local_experts
  int64_t top_k = 2;      // num_experts_per_tok; at most `experts`
  int64_t ffn = 256;      // intermediate_size of each expert
  // vocab_size: the base tokenizer cut to vocab-3 tokens plus the three
  // special tokens <|endoftext|>, <|im_start|>, <|im_end|> (eos = vocab-1).
  int64_t vocab = 4096;
  // Qwen3 tokenizer.json, plain or gzipped; empty: DefaultBaseTokenizerPath().
  std::string base_tokenizer;
};

// The Qwen3 tokenizer stored in the source tree
// (tests/testdata/tokenizers/qwen3/tokenizer.json.gz), fixed at build time.
std::string DefaultBaseTokenizerPath();

// INVALID_ARGUMENT naming the offending flag (e.g. "--kv-heads") when the
// sizes are not positive, inconsistent, or too big for a "tiny" model.
absl::Status ValidateMakeTinyOptions(const MakeTinyOptions& options);

// config.json text (Hugging Face Mixtral layout, indent 1) for the options.
std::string TinyConfigJson(const MakeTinyOptions& options);

// Writes the four files of the model (the tensors of ExpectedTensors(config),
// in that order). Weights are bf16 normal samples, scaled like the fixture's:
// norm weights 1 + 0.1·z, embeddings z, lm_head 4/√hidden·z (logits of std ~4),
// every other matrix z/√fan_in (activations stay O(1)).
absl::Status MakeTinyModel(const MakeTinyOptions& options);

// What `moe-model inspect` reports. Built from config.json and the safetensors
// headers only; no weight is read.
struct ModelSummary {
  std::string dir;
  ModelConfig config;
  int64_t num_tensors = 0;
  int64_t num_files = 0;
  std::map<std::string, int64_t> bytes_by_dtype;  // "BF16" -> bytes of tensor data
  int64_t total_parameters = 0;                   // ModelConfig::TotalParameters
  int64_t active_parameters = 0;                  // ModelConfig::ActiveParameters
};

// Opens `model_dir` with Checkpoint::Open (so a bad checkpoint is an error
// naming the culprit) and summarises it.
absl::StatusOr<ModelSummary> SummarizeModel(const std::string& model_dir);

// The human-readable report: every config field, one per line, then tensors,
// files, bytes by dtype and parameter counts ("total_parameters: 1934976 (1.93M)").
std::string FormatModelSummary(const ModelSummary& summary);

// SummarizeModel + FormatModelSummary.
absl::StatusOr<std::string> InspectModel(const std::string& model_dir);

}  // namespace moe

#endif  // MOE_TOOLS_MODEL_TOOL_H_
