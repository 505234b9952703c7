#include "tools/model_tool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numbers>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "nlohmann/json.hpp"
#include "tools/tiny_tokenizer.h"

#ifndef MOE_DEFAULT_BASE_TOKENIZER
#error "MOE_DEFAULT_BASE_TOKENIZER must be defined by the build (path of the Qwen3 tokenizer)"
#endif

namespace moe {
namespace {

// ---------------------------------------------------------------------------
// Portable random numbers. std::normal_distribution (and std::log / std::cos
// of the C library) differ between platforms; everything below uses integer
// arithmetic and IEEE-754 +, -, *, /, sqrt, which are exactly rounded
// everywhere (the build disables FMA contraction), so a seed means the same
// bits on every machine.

// splitmix64 (Steele, Lea, Flood 2014): a full-period 64-bit generator.
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// ln(x) for x > 0 from frexp and basic arithmetic only:
// x = m·2^e with m in [1/√2, √2), ln m = 2·atanh(s), s = (m-1)/(m+1), |s| < 0.172.
double PortableLog(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // exact: m in [0.5, 1)
  if (m < 0.7071067811865476) {
    m *= 2.0;
    --e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double term = s;
  double sum = 0.0;
  for (int k = 1; k <= 39; k += 2) {  // s^41 < 1e-31: far below one ulp
    sum += term / k;
    term *= s2;
  }
  return 2.0 * sum + e * std::numbers::ln2;
}

// Standard normal samples: splitmix64 → uniform → Box–Muller in Marsaglia's
// polar form (no sine or cosine needed).
class NormalRng {
 public:
  explicit NormalRng(uint64_t state) : state_(state) {}

  double Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u = 0, v = 0, s = 0;
    do {
      u = 2.0 * Uniform() - 1.0;
      v = 2.0 * Uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * PortableLog(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

 private:
  double Uniform() {  // [0, 1), 53 random bits
    return static_cast<double>(SplitMix64(&state_) >> 11) * 0x1.0p-53;
  }

  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// One tensor: bf16 little-endian samples of mean + stddev·N(0,1). Each tensor
// has its own stream (seed and name), so a tensor does not change when another
// one changes shape.
TensorToWrite RandomBf16Tensor(const ExpectedTensor& t, uint64_t seed, double mean,
                               double stddev) {
  uint64_t mix = seed ^ Fnv1a64(t.name);
  NormalRng rng(SplitMix64(&mix));
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::string bytes(static_cast<size_t>(n) * 2, '\0');
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = F32ToBf16(static_cast<float>(mean + stddev * rng.Next()));
    bytes[2 * i] = static_cast<char>(b & 0xff);
    bytes[2 * i + 1] = static_cast<char>(b >> 8);
  }
  return TensorToWrite{t.name, DType::kBF16, t.shape, std::move(bytes)};
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

TensorToWrite InitTensor(const ExpectedTensor& t, const ModelConfig& c, uint64_t seed) {
  if (EndsWith(t.name, ".bias")) return RandomBf16Tensor(t, seed, 0.0, 0.1);  // projection biases
  if (t.shape.size() == 1) return RandomBf16Tensor(t, seed, 1.0, 0.1);  // norm weights
  if (t.name == TensorNames::Embedding()) return RandomBf16Tensor(t, seed, 0.0, 1.0);
  const double hidden = static_cast<double>(c.hidden_size);
  // The final norm makes the hidden state RMS 1; std 4/√hidden gives logits of
  // std ≈ 4: a peaked but not degenerate next-token distribution.
  if (t.name == TensorNames::LmHead()) return RandomBf16Tensor(t, seed, 0.0, 4.0 / std::sqrt(hidden));
  // Linear weights are [out, in]: std 1/√in keeps each output O(1).
  return RandomBf16Tensor(t, seed, 0.0, 1.0 / std::sqrt(static_cast<double>(t.shape.back())));
}

// ---------------------------------------------------------------------------

absl::Status ErrnoError(const std::string& path, const char* what, int err) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", std::strerror(err)));
}

// Temp file in the same directory + rename: readers never see half a file.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return ErrnoError(path, "cannot create a temporary file next to it", errno);
  absl::Status status;
  for (std::string_view rest = contents; status.ok() && !rest.empty();) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno != EINTR) status = ErrnoError(path, "write failed", errno);
    if (n > 0) rest.remove_prefix(static_cast<size_t>(n));
  }
  if (status.ok() && ::fchmod(fd, 0644) != 0) status = ErrnoError(path, "fchmod failed", errno);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(path, "fsync failed", errno);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(path, "close failed", errno);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(path, "cannot rename the temporary file into place", errno);
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

absl::Status FlagError(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

// Upper bounds that keep every product far from overflow and the files small.
constexpr int64_t kMaxDim = int64_t{1} << 20;
// 2^33 (16 GiB of bf16): room for the GPU benchmark's 4-layer Mixtral-8x7B
// shape (about 6B parameters), made on the GPU machine.
constexpr double kMaxParameters = 8589934592.0;

std::string HumanCount(int64_t n) {
  if (n >= 1'000'000'000) return absl::StrFormat("%.2fB", n / 1e9);
  if (n >= 1'000'000) return absl::StrFormat("%.2fM", n / 1e6);
  if (n >= 1'000) return absl::StrFormat("%.2fK", n / 1e3);
  return absl::StrCat(n);
}

std::string HumanBytes(int64_t n) {
  if (n >= (int64_t{1} << 30)) return absl::StrFormat("%.2f GiB", n / 1073741824.0);
  if (n >= (int64_t{1} << 20)) return absl::StrFormat("%.2f MiB", n / 1048576.0);
  if (n >= (int64_t{1} << 10)) return absl::StrFormat("%.2f KiB", n / 1024.0);
  return absl::StrCat(n, " B");
}

}  // namespace

std::string DefaultBaseTokenizerPath() { return MOE_DEFAULT_BASE_TOKENIZER; }

namespace {

bool IsQwen(std::string_view family) { return family == "qwen2_moe" || family == "qwen3_moe"; }

// The options with every "family default" (0 / empty) filled in.
MakeTinyOptions Resolved(const MakeTinyOptions& in) {
  MakeTinyOptions o = in;
  const bool mixtral = o.family == "mixtral";
  if (o.experts == 0) o.experts = mixtral ? 4 : 8;
  if (o.ffn == 0) o.ffn = mixtral ? 256 : 128;
  if (o.head_dim == 0) o.head_dim = o.family == "qwen3_moe" ? 48 : (o.heads > 0 ? o.hidden / o.heads : 0);
  if (o.shared_ffn == 0 && o.family == "qwen2_moe") o.shared_ffn = 256;
  if (o.dense_ffn == 0 && IsQwen(o.family)) o.dense_ffn = o.family == "qwen2_moe" ? 256 : 384;
  return o;
}

}  // namespace

absl::Status ValidateMakeTinyOptions(const MakeTinyOptions& options) {
  if (options.out_dir.empty()) return FlagError("--out is required (the directory to write)");
  if (options.family != "mixtral" && options.family != "qwen2_moe" && options.family != "qwen3_moe" &&
      options.family != "olmoe") {
    return FlagError(absl::StrCat("--family '", options.family,
                                  "' is not one of mixtral, qwen2_moe, qwen3_moe, olmoe"));
  }
  const MakeTinyOptions o = Resolved(options);
  const std::pair<const char*, int64_t> sizes[] = {
      {"--hidden", o.hidden}, {"--layers", o.layers},   {"--heads", o.heads},
      {"--kv-heads", o.kv_heads}, {"--head-dim", o.head_dim}, {"--experts", o.experts},
      {"--top-k", o.top_k},   {"--ffn", o.ffn},         {"--vocab", o.vocab},
      {"--decoder-sparse-step", o.decoder_sparse_step}};
  for (const auto& [flag, value] : sizes) {
    if (value <= 0) return FlagError(absl::StrCat(flag, " must be positive, got ", value));
    if (value > kMaxDim) {
      return FlagError(absl::StrCat(flag, " = ", value, " is too big for a tiny model (max ",
                                    kMaxDim, ")"));
    }
  }
  // Switches that the family does not have.
  auto only = [&](bool set, const char* flag, bool applies, const char* families) -> absl::Status {
    if (set && !applies) {
      return FlagError(absl::StrCat(flag, " applies to ", families, " only, not --family ", o.family));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(only(options.shared_ffn != 0, "--shared-ffn", o.family == "qwen2_moe", "qwen2_moe"));
  RETURN_IF_ERROR(only(options.dense_ffn != 0, "--dense-ffn", IsQwen(o.family), "qwen2_moe and qwen3_moe"));
  RETURN_IF_ERROR(only(!options.mlp_only_layers.empty(), "--mlp-only-layers", IsQwen(o.family),
                       "qwen2_moe and qwen3_moe"));
  RETURN_IF_ERROR(only(options.decoder_sparse_step != 1, "--decoder-sparse-step", IsQwen(o.family),
                       "qwen2_moe and qwen3_moe"));
  RETURN_IF_ERROR(only(options.attention_bias.has_value(), "--attention-bias", o.family != "mixtral",
                       "qwen2_moe, qwen3_moe and olmoe"));
  RETURN_IF_ERROR(only(options.norm_topk_prob.has_value(), "--norm-topk-prob", o.family != "mixtral",
                       "qwen2_moe, qwen3_moe and olmoe"));
  RETURN_IF_ERROR(only(options.clip_qkv != 0, "--clip-qkv", o.family == "olmoe", "olmoe"));
  if (o.family == "qwen2_moe") {
    for (const auto& [flag, value] : {std::pair<const char*, int64_t>{"--shared-ffn", o.shared_ffn},
                                      {"--dense-ffn", o.dense_ffn}}) {
      if (value <= 0 || value > kMaxDim) {
        return FlagError(absl::StrCat(flag, " must be in [1, ", kMaxDim, "], got ", value));
      }
    }
  }
  if (o.family == "qwen3_moe" && (o.dense_ffn <= 0 || o.dense_ffn > kMaxDim)) {
    return FlagError(absl::StrCat("--dense-ffn must be in [1, ", kMaxDim, "], got ", o.dense_ffn));
  }
  if (!(o.clip_qkv >= 0 && std::isfinite(o.clip_qkv))) {
    return FlagError(absl::StrCat("--clip-qkv must be a positive number (0: none), got ", o.clip_qkv));
  }
  if (o.family == "olmoe" && o.head_dim * o.heads != o.hidden) {
    return FlagError(absl::StrCat("--head-dim (", o.head_dim, ") must be --hidden / --heads (",
                                  o.hidden / o.heads, ") for olmoe"));
  }
  if (o.head_dim % 2 != 0) return FlagError(absl::StrCat("--head-dim (", o.head_dim, ") must be even (RoPE)"));
  for (int64_t l : o.mlp_only_layers) {
    if (l < 0 || l >= o.layers) {
      return FlagError(absl::StrCat("--mlp-only-layers: ", l, " is not a layer (0-", o.layers - 1, ")"));
    }
  }
  if (o.family != "qwen3_moe" && o.family != "olmoe" && o.hidden % o.heads != 0 && options.head_dim == 0) {
    return FlagError(absl::StrCat("--hidden (", o.hidden, ") must be a multiple of --heads (",
                                  o.heads, ") or --head-dim given"));
  }
  if (o.heads % o.kv_heads != 0) {
    return FlagError(absl::StrCat("--heads (", o.heads, ") must be a multiple of --kv-heads (",
                                  o.kv_heads, ")"));
  }
  if (o.top_k > o.experts) {
    return FlagError(absl::StrCat("--top-k (", o.top_k, ") must be at most --experts (",
                                  o.experts, ")"));
  }
  if (o.vocab < kMinTinyVocab) {
    return FlagError(absl::StrCat("--vocab must be at least ", kMinTinyVocab,
                                  " (256 byte tokens + 3 special tokens), got ", o.vocab));
  }
  // The config the options describe must be one the engine accepts (every
  // layer dense, for instance, is not a mixture of experts).
  absl::StatusOr<ModelConfig> config = ParseModelConfig(TinyConfigJson(o), "make-tiny config.json");
  if (!config.ok()) return FlagError(std::string(config.status().message()));
  const double total = static_cast<double>(config->TotalParameters());
  if (total > kMaxParameters) {
    return FlagError(absl::StrFormat(
        "the model would have %.0f parameters, more than make-tiny's limit of %.0f; reduce "
        "--hidden, --ffn, --experts, --layers or --vocab",
        total, kMaxParameters));
  }
  return absl::OkStatus();
}

std::string TinyConfigJson(const MakeTinyOptions& options) {
  const MakeTinyOptions o = Resolved(options);
  using Json = nlohmann::ordered_json;
  Json c = Json::object();
  if (o.family == "mixtral") {
    c["architectures"] = Json::array({"MixtralForCausalLM"});
    c["model_type"] = "mixtral";
    c["vocab_size"] = o.vocab;
    c["hidden_size"] = o.hidden;
    c["intermediate_size"] = o.ffn;
    c["num_hidden_layers"] = o.layers;
    c["num_attention_heads"] = o.heads;
    c["num_key_value_heads"] = o.kv_heads;
    c["head_dim"] = o.head_dim;
    c["max_position_embeddings"] = 4096;
    c["rms_norm_eps"] = 1e-5;
    c["rope_theta"] = 1e6;
    c["num_local_experts"] = o.experts;
    c["num_experts_per_tok"] = o.top_k;
    c["tie_word_embeddings"] = o.tie_word_embeddings;
    c["sliding_window"] = nullptr;
    c["hidden_act"] = "silu";
    c["bos_token_id"] = nullptr;
    c["eos_token_id"] = o.vocab - 1;
    c["torch_dtype"] = "bfloat16";
    c["router_aux_loss_coef"] = 0.02;
    c["output_router_logits"] = false;
    return DumpJsonPythonStyle(c, /*indent=*/1);
  }
  // The Qwen and OLMoE layouts share their first fields.
  const bool qwen2 = o.family == "qwen2_moe", qwen3 = o.family == "qwen3_moe", olmoe = o.family == "olmoe";
  c["architectures"] = Json::array(
      {qwen2 ? "Qwen2MoeForCausalLM" : qwen3 ? "Qwen3MoeForCausalLM" : "OlmoeForCausalLM"});
  c["model_type"] = o.family;
  c["vocab_size"] = o.vocab;
  c["hidden_size"] = o.hidden;
  c["num_hidden_layers"] = o.layers;
  c["num_attention_heads"] = o.heads;
  c["num_key_value_heads"] = o.kv_heads;
  c["max_position_embeddings"] = 4096;
  c["rms_norm_eps"] = olmoe ? 1e-5 : 1e-6;
  c["rope_theta"] = olmoe ? 1e4 : 1e6;
  c["num_experts"] = o.experts;
  c["num_experts_per_tok"] = o.top_k;
  c["tie_word_embeddings"] = o.tie_word_embeddings;
  c["hidden_act"] = "silu";
  c["bos_token_id"] = nullptr;
  c["eos_token_id"] = o.vocab - 1;
  c["torch_dtype"] = "bfloat16";
  c["attention_dropout"] = 0.0;
  c["initializer_range"] = 0.02;
  c["use_cache"] = true;
  c["output_router_logits"] = false;
  Json mlp_only = Json::array();
  for (int64_t l : o.mlp_only_layers) mlp_only.push_back(l);
  if (qwen2) {
    if (options.head_dim != 0) c["head_dim"] = o.head_dim;  // absent: hidden / heads
    c["intermediate_size"] = o.dense_ffn;
    c["moe_intermediate_size"] = o.ffn;
    c["shared_expert_intermediate_size"] = o.shared_ffn;
    c["decoder_sparse_step"] = o.decoder_sparse_step;
    c["mlp_only_layers"] = mlp_only;
    c["norm_topk_prob"] = o.norm_topk_prob.value_or(false);
    if (o.attention_bias.has_value()) c["qkv_bias"] = *o.attention_bias;  // absent: true
    c["use_sliding_window"] = false;
    c["sliding_window"] = 4096;
    c["max_window_layers"] = o.layers;
    c["router_aux_loss_coef"] = 0.001;
  } else if (qwen3) {
    c["head_dim"] = o.head_dim;
    c["intermediate_size"] = o.dense_ffn;
    c["moe_intermediate_size"] = o.ffn;
    c["attention_bias"] = o.attention_bias.value_or(false);
    c["rope_scaling"] = nullptr;
    c["decoder_sparse_step"] = o.decoder_sparse_step;
    c["mlp_only_layers"] = mlp_only;
    c["norm_topk_prob"] = o.norm_topk_prob.value_or(true);
    c["use_sliding_window"] = false;
    c["sliding_window"] = nullptr;
    c["max_window_layers"] = o.layers;
    c["router_aux_loss_coef"] = 0.001;
  } else {
    c["intermediate_size"] = o.ffn;
    c["attention_bias"] = o.attention_bias.value_or(false);
    c["clip_qkv"] = o.clip_qkv > 0 ? Json(o.clip_qkv) : Json(nullptr);
    c["rope_scaling"] = nullptr;
    c["norm_topk_prob"] = o.norm_topk_prob.value_or(false);
    c["pad_token_id"] = o.vocab - 3;
    c["router_aux_loss_coef"] = 0.01;
  }
  return DumpJsonPythonStyle(c, /*indent=*/1);
}

absl::Status MakeTinyModel(const MakeTinyOptions& options) {
  RETURN_IF_ERROR(ValidateMakeTinyOptions(options));
  namespace fs = std::filesystem;
  const fs::path dir(options.out_dir);

  // Everything that can fail on input is checked before anything is written.
  const std::string config_text = TinyConfigJson(options);
  const std::string config_path = (dir / "config.json").string();
  ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(config_text, config_path));

  const std::string base_path =
      options.base_tokenizer.empty() ? DefaultBaseTokenizerPath() : options.base_tokenizer;
  ASSIGN_OR_RETURN(std::string base_text, ReadMaybeGzippedFile(base_path));
  absl::StatusOr<std::string> tokenizer =
      CutByteLevelBpeTokenizer(base_text, options.vocab, base_path);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat("cannot cut the base tokenizer to --vocab ", options.vocab,
                                     ": ", tokenizer.status().message()));
  }
  base_text = std::string();  // release the ~11 MB

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(options.out_dir, ": cannot create directory: ", ec.message()));
  }
  // A stale index would make readers ignore the model.safetensors we write.
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        index.string(), " exists (a sharded checkpoint); choose another --out directory"));
  }

  // Each tensor has its own random stream, so tensors are generated in
  // parallel with the same bits as one after another.
  const std::vector<ExpectedTensor> expected = ExpectedTensors(config);
  std::vector<TensorToWrite> tensors(expected.size());
  ThreadPool pool(0);
  pool.ParallelFor(static_cast<int64_t>(expected.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) tensors[i] = InitTensor(expected[i], config, options.seed);
  });
  RETURN_IF_ERROR(WriteSafetensors(
      (dir / "model.safetensors").string(), tensors,
      {{"format", "pt"},
       {"generator", absl::StrCat("moe-model make-tiny --seed ", options.seed)}}));
  RETURN_IF_ERROR(WriteFileAtomically((dir / "tokenizer.json").string(), *tokenizer));
  RETURN_IF_ERROR(
      WriteFileAtomically((dir / "tokenizer_config.json").string(), TinyTokenizerConfigJson()));
  // config.json last: a directory with a config.json is complete.
  RETURN_IF_ERROR(WriteFileAtomically(config_path, config_text));
  return absl::OkStatus();
}

absl::StatusOr<ModelSummary> SummarizeModel(const std::string& model_dir) {
  ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(model_dir));
  ModelSummary s;
  s.dir = model_dir;
  s.config = checkpoint->config();
  const auto& files = checkpoint->store().files();
  s.num_files = static_cast<int64_t>(files.size());
  for (const auto& file : files) {
    for (const auto& [name, entry] : file->header().tensors) {
      ++s.num_tensors;
      s.bytes_by_dtype[std::string(DTypeName(entry.dtype))] +=
          static_cast<int64_t>(entry.end - entry.begin);
    }
  }
  s.total_parameters = s.config.TotalParameters();
  s.active_parameters = s.config.ActiveParameters();
  return s;
}

std::string FormatModelSummary(const ModelSummary& s) {
  const ModelConfig& c = s.config;
  auto b = [](bool v) { return v ? "true" : "false"; };
  std::string out = absl::StrCat("model: ", s.dir, "\n", "config:\n");
  absl::StrAppend(&out, "  family: ", std::string(ModelFamilyName(c.family)), "\n");
  absl::StrAppend(&out, "  model_type: ", c.model_type, "\n");
  absl::StrAppend(&out, "  hidden_size: ", c.hidden_size, "\n");
  absl::StrAppend(&out, "  intermediate_size: ", c.intermediate_size, "\n");
  absl::StrAppend(&out, "  num_hidden_layers: ", c.num_hidden_layers, "\n");
  absl::StrAppend(&out, "  num_attention_heads: ", c.num_attention_heads, "\n");
  absl::StrAppend(&out, "  num_key_value_heads: ", c.num_key_value_heads, "\n");
  absl::StrAppend(&out, "  head_dim: ", c.head_dim, "\n");
  absl::StrAppend(&out, absl::StrFormat("  rms_norm_eps: %g\n", c.rms_norm_eps));
  absl::StrAppend(&out, absl::StrFormat("  rope_theta: %g\n", c.rope_theta));
  absl::StrAppend(&out, "  num_experts: ", c.num_experts, "\n");
  absl::StrAppend(&out, "  num_experts_per_tok: ", c.num_experts_per_tok, "\n");
  absl::StrAppend(&out, "  vocab_size: ", c.vocab_size, "\n");
  absl::StrAppend(&out, "  tie_word_embeddings: ", b(c.tie_word_embeddings), "\n");
  absl::StrAppend(&out, "  max_position_embeddings: ", c.max_position_embeddings, "\n");
  absl::StrAppend(&out, "  bos_token_id: ",
                  c.bos_token_id ? absl::StrCat(*c.bos_token_id) : std::string("none"), "\n");
  absl::StrAppend(&out, "  eos_token_ids: [", absl::StrJoin(c.eos_token_ids, ", "), "]\n");
  absl::StrAppend(&out, "  norm_topk_prob: ", b(c.norm_topk_prob), "\n");
  absl::StrAppend(&out, "  qk_norm: ", b(c.qk_norm), "\n");
  absl::StrAppend(&out, "  qk_norm_per_head: ", b(c.qk_norm_per_head), "\n");
  absl::StrAppend(&out, "  qkv_bias: ", b(c.qkv_bias), "\n");
  absl::StrAppend(&out, "  o_bias: ", b(c.o_bias), "\n");
  absl::StrAppend(&out, "  clip_qkv: ", c.clip_qkv ? absl::StrFormat("%g", *c.clip_qkv) : std::string("none"), "\n");
  absl::StrAppend(&out, "  shared_expert_intermediate_size: ",
                  c.shared_expert_intermediate_size, "\n");
  absl::StrAppend(&out, "  shared_expert_gate: ", b(c.shared_expert_gate), "\n");
  absl::StrAppend(&out, "  moe_layers: ", c.NumMoeLayers(), "\n");
  absl::StrAppend(&out, "  dense_mlp_layers: [", absl::StrJoin(c.DenseLayers(), ", "), "]\n");
  if (!c.DenseLayers().empty()) {
    absl::StrAppend(&out, "  dense_mlp_intermediate_size: ", c.mlp_intermediate_size, "\n");
  }
  absl::StrAppend(&out, "tensors: ", s.num_tensors, "\n");
  absl::StrAppend(&out, "files: ", s.num_files, "\n");
  for (const auto& [dtype, bytes] : s.bytes_by_dtype) {
    absl::StrAppend(&out, "bytes_", dtype, ": ", bytes, " (", HumanBytes(bytes), ")\n");
  }
  absl::StrAppend(&out, "total_parameters: ", s.total_parameters, " (",
                  HumanCount(s.total_parameters), ")\n");
  absl::StrAppend(&out, "active_parameters_per_token: ", s.active_parameters, " (",
                  HumanCount(s.active_parameters), ")\n");
  return out;
}

absl::StatusOr<std::string> InspectModel(const std::string& model_dir) {
  ASSIGN_OR_RETURN(ModelSummary summary, SummarizeModel(model_dir));
  return FormatModelSummary(summary);
}

}  // namespace moe
