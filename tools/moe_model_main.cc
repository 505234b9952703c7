// moe-model: make a tiny random Mixtral checkpoint, or inspect a checkpoint.
// A thin layer over tools_lib (tools/model_tool.h): flags in, options out.
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "core/command_line.h"
#include "tools/model_tool.h"

// Flag names use '_' (C++ identifiers); the command line may spell them with
// '-' (--kv-heads, --top-k, --base-tokenizer): see moe::NormalizedArgs.
ABSL_FLAG(std::string, out, "", "make-tiny: directory to write the model into (required).");
ABSL_FLAG(uint64_t, seed, 1, "make-tiny: seed of the random weights.");
ABSL_FLAG(int64_t, hidden, 128, "make-tiny: hidden_size.");
ABSL_FLAG(int64_t, layers, 2, "make-tiny: num_hidden_layers.");
ABSL_FLAG(int64_t, heads, 4, "make-tiny: num_attention_heads (head_dim = hidden / heads).");
ABSL_FLAG(int64_t, kv_heads, 2, "make-tiny: num_key_value_heads (must divide --heads).");
ABSL_FLAG(int64_t, experts, 4, "make-tiny: num_local_experts.");
ABSL_FLAG(int64_t, top_k, 2, "make-tiny: num_experts_per_tok (<= --experts).");
ABSL_FLAG(int64_t, ffn, 256, "make-tiny: intermediate_size of each expert.");
ABSL_FLAG(int64_t, vocab, 4096,
          "make-tiny: vocab_size (>= 259); the last 3 ids are <|endoftext|>, <|im_start|>, "
          "<|im_end|> (eos).");
ABSL_FLAG(std::string, base_tokenizer, "",
          "make-tiny: Qwen3 tokenizer.json (plain or .gz) to cut; default: the copy in "
          "tests/testdata/tokenizers/qwen3.");

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  moe-model make-tiny --out DIR [--seed N] [--hidden H] [--layers L] [--heads A]\n"
    "                      [--kv-heads K] [--experts E] [--top-k k] [--ffn F] [--vocab V]\n"
    "                      [--base-tokenizer PATH]\n"
    "      Writes a Mixtral checkpoint with random bf16 weights (config.json,\n"
    "      model.safetensors, tokenizer.json, tokenizer_config.json) into DIR.\n"
    "      Defaults: seed 1, hidden 128, layers 2, heads 4, kv-heads 2, experts 4,\n"
    "      top-k 2, ffn 256, vocab 4096 (the shape of tests/testdata/tiny-mixtral).\n"
    "  moe-model inspect DIR\n"
    "      Prints the config, tensor count, bytes by dtype and parameter counts.\n";

int Usage(std::string_view problem) {
  if (!problem.empty()) std::cerr << "moe-model: " << problem << "\n";
  std::cerr << kUsage;
  return 2;
}

int Fail(absl::string_view command, absl::string_view message) {
  std::cerr << "moe-model " << command << ": " << message << "\n";
  return 1;
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
  options.experts = absl::GetFlag(FLAGS_experts);
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.ffn = absl::GetFlag(FLAGS_ffn);
  options.vocab = absl::GetFlag(FLAGS_vocab);
  options.base_tokenizer = absl::GetFlag(FLAGS_base_tokenizer);
  absl::Status status = moe::MakeTinyModel(options);
  if (!status.ok()) return Fail("make-tiny", status.message());
  LOG(INFO) << "wrote a tiny Mixtral (seed " << options.seed << ") to " << options.out_dir;
  std::cout << options.out_dir << "\n";
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
  return Usage(std::string("unknown subcommand '") + std::string(command) + "'");
}
