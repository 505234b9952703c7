// The library behind `moe-model`: make a tiny random checkpoint of any family for
// tests and demos, and summarise a checkpoint directory.
//
// Plain functions over options structs; no flags, no global state. Safe to call
// from any thread (two calls must not write the same directory at once).
#ifndef MOE_TOOLS_MODEL_TOOL_H_
#define MOE_TOOLS_MODEL_TOOL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model_config.h"

namespace moe {

// A checkpoint of any supported family with random weights. With only
// `family` set, the options give the shape of tests/testdata/tiny-FAMILY and
// the same config.json and tokenizer files, byte for byte. Field names match
// the `moe-model make-tiny` flags; 0 / empty means the family's default.
struct MakeTinyOptions {
  // Directory to write config.json, model.safetensors, tokenizer.json and
  // tokenizer_config.json into; created if missing, those files replaced.
  std::string out_dir;
  // mixtral, qwen2_moe, qwen3_moe or olmoe.
  std::string family = "mixtral";
  // Same seed and sizes give byte-identical files on every platform: weights
  // come from our own PRNG and basic IEEE-754 arithmetic only.
  uint64_t seed = 1;
  int64_t hidden = 128;   // hidden_size
  int64_t layers = 2;     // num_hidden_layers
  int64_t heads = 4;      // num_attention_heads
  int64_t kv_heads = 2;   // num_key_value_heads; must divide heads
  int64_t head_dim = 0;   // 0: hidden / heads (qwen3_moe: 48)
  int64_t experts = 0;    // num_local_experts / num_experts; 0: 4 (mixtral), 8 (others)
  int64_t top_k = 2;      // num_experts_per_tok; at most `experts`
  int64_t ffn = 0;        // FFN size of each routed expert; 0: 256 (mixtral), 128 (others)
  // vocab_size: the base tokenizer cut to vocab-3 tokens plus the three
  // special tokens <|endoftext|>, <|im_start|>, <|im_end|> (eos = vocab-1).
  int64_t vocab = 4096;
  // qwen2_moe: the shared expert's FFN size; 0: 256.
  int64_t shared_ffn = 0;
  // Qwen families: intermediate_size, the FFN size of dense MLP layers; 0: 256
  // (qwen2_moe), 384 (qwen3_moe).
  int64_t dense_ffn = 0;
  // Qwen families: layers that are dense MLP layers (mlp_only_layers), and
  // decoder_sparse_step.
  std::vector<int64_t> mlp_only_layers;
  int64_t decoder_sparse_step = 1;
  // Attention biases: qwen2_moe's qkv_bias (default true), qwen3_moe's and
  // olmoe's attention_bias (q, k, v and o; default false). Mixtral has none.
  std::optional<bool> attention_bias;
  // Renormalise the top-k gate weights; default: true (qwen3_moe), false
  // (qwen2_moe, olmoe). Mixtral always renormalises.
  std::optional<bool> norm_topk_prob;
  // olmoe: clip_qkv; 0: none (null).
  double clip_qkv = 0;
  bool tie_word_embeddings = false;
  // Qwen3 tokenizer.json, plain or gzipped; empty: DefaultBaseTokenizerPath().
  std::string base_tokenizer;
};

// The Qwen3 tokenizer stored in the source tree
// (tests/testdata/tokenizers/qwen3/tokenizer.json.gz), fixed at build time.
std::string DefaultBaseTokenizerPath();

// INVALID_ARGUMENT naming the offending flag (e.g. "--kv-heads") when the
// sizes are not positive, inconsistent, or too big for a "tiny" model.
absl::Status ValidateMakeTinyOptions(const MakeTinyOptions& options);

// config.json text (the family's Hugging Face layout, indent 1) for the
// options; assumes ValidateMakeTinyOptions passed.
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
