// moe-model: make a tiny random checkpoint of any family, or inspect a checkpoint.
// A thin layer over tools_lib (tools/model_tool.h): flags in, options out.
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "core/command_line.h"
#include "tools/gguf.h"
#include "tools/model_tool.h"

// Flag names use '_' (C++ identifiers); the command line may spell them with
// '-' (--kv-heads, --top-k, --base-tokenizer): see moe::NormalizedArgs.
ABSL_FLAG(std::string, out, "",
          "make-tiny: directory to write the model into; export-gguf: the GGUF file to write (required).");
ABSL_FLAG(uint64_t, seed, 1, "make-tiny: seed of the random weights.");
ABSL_FLAG(int64_t, hidden, 128, "make-tiny: hidden_size.");
ABSL_FLAG(int64_t, layers, 2, "make-tiny: num_hidden_layers.");
ABSL_FLAG(int64_t, heads, 4, "make-tiny: num_attention_heads (head_dim = hidden / heads).");
ABSL_FLAG(int64_t, kv_heads, 2, "make-tiny: num_key_value_heads (must divide --heads).");
ABSL_FLAG(std::string, family, "mixtral", "make-tiny: mixtral, qwen2_moe, qwen3_moe or olmoe.");
ABSL_FLAG(int64_t, head_dim, 0, "make-tiny: head_dim; 0: hidden / heads (qwen3_moe: 48).");
ABSL_FLAG(int64_t, experts, 0, "make-tiny: number of routed experts; 0: 4 (mixtral), 8 (others).");
ABSL_FLAG(int64_t, top_k, 2, "make-tiny: num_experts_per_tok (<= --experts).");
ABSL_FLAG(int64_t, ffn, 0, "make-tiny: FFN size of each routed expert; 0: 256 (mixtral), 128 (others).");
ABSL_FLAG(int64_t, shared_ffn, 0, "make-tiny, qwen2_moe: shared expert FFN size; 0: 256.");
ABSL_FLAG(int64_t, dense_ffn, 0,
          "make-tiny, qwen2_moe/qwen3_moe: intermediate_size (dense MLP layers); 0: 256 / 384.");
ABSL_FLAG(std::string, mlp_only_layers, "",
          "make-tiny, qwen2_moe/qwen3_moe: comma-separated layers that are dense MLP layers.");
ABSL_FLAG(int64_t, decoder_sparse_step, 1, "make-tiny, qwen2_moe/qwen3_moe: decoder_sparse_step.");
ABSL_FLAG(std::string, attention_bias, "",
          "make-tiny: true or false; qwen2_moe's qkv_bias (default true), qwen3_moe's and olmoe's "
          "attention_bias (q/k/v/o, default false).");
ABSL_FLAG(std::string, norm_topk_prob, "",
          "make-tiny: true or false; default true for qwen3_moe, false for qwen2_moe and olmoe.");
ABSL_FLAG(double, clip_qkv, 0, "make-tiny, olmoe: clip_qkv; 0: none.");
ABSL_FLAG(bool, tie_word_embeddings, false, "make-tiny: tie lm_head to the embedding table.");
ABSL_FLAG(int64_t, vocab, 4096,
          "make-tiny: vocab_size (>= 259); the last 3 ids are <|endoftext|>, <|im_start|>, "
          "<|im_end|> (eos).");
ABSL_FLAG(std::string, model, "", "export-gguf: the checkpoint directory (required).");
ABSL_FLAG(bool, f32, false, "export-gguf: widen the bf16 weights to f32 (a reference for llama.cpp).");
ABSL_FLAG(std::string, base_tokenizer, "",
          "make-tiny: Qwen3 tokenizer.json (plain or .gz) to cut; default: the copy in "
          "tests/testdata/tokenizers/qwen3.");

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  moe-model make-tiny --out DIR [--family mixtral|qwen2_moe|qwen3_moe|olmoe] [--seed N]\n"
    "                      [--hidden H] [--layers L] [--heads A] [--kv-heads K] [--head-dim D]\n"
    "                      [--experts E] [--top-k k] [--ffn F] [--vocab V] [--tie-word-embeddings]\n"
    "                      [--shared-ffn S] [--dense-ffn F] [--mlp-only-layers L,...]\n"
    "                      [--decoder-sparse-step N] [--attention-bias true|false]\n"
    "                      [--norm-topk-prob true|false] [--clip-qkv C] [--base-tokenizer PATH]\n"
    "      Writes a checkpoint of the family with random bf16 weights (config.json,\n"
    "      model.safetensors, tokenizer.json, tokenizer_config.json) into DIR.\n"
    "      Defaults: the shape of tests/testdata/tiny-FAMILY (seed 1, hidden 128,\n"
    "      layers 2, heads 4, kv-heads 2, top-k 2, vocab 4096; mixtral: 4 experts of\n"
    "      FFN 256; the others: 8 experts of FFN 128).\n"
    "  moe-model inspect DIR\n"
    "      Prints the config, tensor count, bytes by dtype and parameter counts.\n"
    "  moe-model export-gguf --model DIR --out FILE [--f32]\n"
    "      Writes a Mixtral-layout bf16 checkpoint as a GGUF file for llama.cpp\n"
    "      (architecture llama with stacked experts; bf16 weights as stored, norms\n"
    "      in f32, the byte-level BPE tokenizer). --f32 widens the weights to f32.\n";

int Usage(std::string_view problem) {
  if (!problem.empty()) std::cerr << "moe-model: " << problem << "\n";
  std::cerr << kUsage;
  return 2;
}

int Fail(absl::string_view command, absl::string_view message) {
  std::cerr << "moe-model " << command << ": " << message << "\n";
  return 1;
}

// "", "true" or "false" for a family-default switch.
absl::StatusOr<std::optional<bool>> Switch(const char* flag, const std::string& value) {
  if (value.empty()) return std::optional<bool>();
  if (value == "true") return std::optional<bool>(true);
  if (value == "false") return std::optional<bool>(false);
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be true or false, got '", value, "'"));
}

int MakeTiny(const std::vector<char*>& positional) {
  if (positional.size() != 2) return Usage("make-tiny takes no positional arguments");
  moe::MakeTinyOptions options;
  options.out_dir = absl::GetFlag(FLAGS_out);
  if (options.out_dir.empty()) return Usage("make-tiny needs --out DIR");
  options.seed = absl::GetFlag(FLAGS_seed);
  options.hidden = absl::GetFlag(FLAGS_hidden);
  options.layers = absl::GetFlag(FLAGS_layers);
  options.heads = absl::GetFlag(FLAGS_heads);
  options.kv_heads = absl::GetFlag(FLAGS_kv_heads);
  options.family = absl::GetFlag(FLAGS_family);
  options.head_dim = absl::GetFlag(FLAGS_head_dim);
  options.shared_ffn = absl::GetFlag(FLAGS_shared_ffn);
  options.dense_ffn = absl::GetFlag(FLAGS_dense_ffn);
  options.decoder_sparse_step = absl::GetFlag(FLAGS_decoder_sparse_step);
  options.clip_qkv = absl::GetFlag(FLAGS_clip_qkv);
  options.tie_word_embeddings = absl::GetFlag(FLAGS_tie_word_embeddings);
  for (absl::string_view item : absl::StrSplit(absl::GetFlag(FLAGS_mlp_only_layers), ',', absl::SkipEmpty())) {
    int64_t layer = 0;
    if (!absl::SimpleAtoi(item, &layer)) {
      return Fail("make-tiny", absl::StrCat("--mlp-only-layers: '", item, "' is not a layer number"));
    }
    options.mlp_only_layers.push_back(layer);
  }
  absl::StatusOr<std::optional<bool>> bias = Switch("attention-bias", absl::GetFlag(FLAGS_attention_bias));
  if (!bias.ok()) return Fail("make-tiny", bias.status().message());
  options.attention_bias = *bias;
  absl::StatusOr<std::optional<bool>> norm = Switch("norm-topk-prob", absl::GetFlag(FLAGS_norm_topk_prob));
  if (!norm.ok()) return Fail("make-tiny", norm.status().message());
  options.norm_topk_prob = *norm;
  options.experts = absl::GetFlag(FLAGS_experts);
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.ffn = absl::GetFlag(FLAGS_ffn);
  options.vocab = absl::GetFlag(FLAGS_vocab);
  options.base_tokenizer = absl::GetFlag(FLAGS_base_tokenizer);
  absl::Status status = moe::MakeTinyModel(options);
  if (!status.ok()) return Fail("make-tiny", status.message());
  LOG(INFO) << "wrote a tiny " << options.family << " (seed " << options.seed << ") to " << options.out_dir;
  std::cout << options.out_dir << "\n";
  return 0;
}

int ExportGguf(const std::vector<char*>& positional) {
  if (positional.size() != 2) return Usage("export-gguf takes no positional arguments");
  const std::string model = absl::GetFlag(FLAGS_model), out = absl::GetFlag(FLAGS_out);
  if (model.empty() || out.empty()) return Usage("export-gguf needs --model DIR and --out FILE");
  absl::Status status = moe::gguf::ExportGguf(model, out, absl::GetFlag(FLAGS_f32));
  if (!status.ok()) return Fail("export-gguf", status.message());
  std::cout << out << "\n";
  return 0;
}

int Inspect(const std::vector<char*>& positional) {
  if (positional.size() != 3) return Usage("inspect takes exactly one DIR");
  absl::StatusOr<std::string> report = moe::InspectModel(positional[2]);
  if (!report.ok()) return Fail("inspect", report.status().message());
  std::cout << *report;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  absl::SetProgramUsageMessage(kUsage);

  moe::NormalizedArgs args(argc, argv);
  const std::vector<char*> positional = absl::ParseCommandLine(args.argc(), args.argv());

  if (positional.size() < 2) return Usage("");
  const std::string_view command = positional[1];
  if (command == "make-tiny") return MakeTiny(positional);
  if (command == "inspect") return Inspect(positional);
  if (command == "export-gguf") return ExportGguf(positional);
  return Usage(std::string("unknown subcommand '") + std::string(command) + "'");
}
