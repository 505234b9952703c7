// moe-generate: greedy decoding of a prompt given as token ids, printed as the
// tokens are produced.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/checkpoint.h"
#include "core/command_line.h"
#include "core/thread_pool.h"
#include "experts/expert_shard.h"
#include "experts/local_expert_backend.h"
#include "gateway/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "router/dense_model.h"
#include "router/forward.h"
#include "router/generator.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout).");
ABSL_FLAG(std::string, prompt_ids, "", "Comma-separated prompt token ids, e.g. 1,2,3.");
ABSL_FLAG(int, max_tokens, 16, "Number of tokens to generate (>= 1).");
ABSL_FLAG(int, top_logprobs, 0, "Report the k most likely tokens per step (0..20).");
ABSL_FLAG(bool, json, false, "One JSON object per generated token.");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after an end-of-sequence token.");
ABSL_FLAG(int, threads, 0, "Compute threads (0: all available CPUs).");
ABSL_FLAG(bool, decode_text, false,
          "Print the continuation as text (tokenizer.json or tokenizer.json.gz of the model directory).");

namespace {

int Fail(const std::string& msg) {
  std::cerr << "moe-generate: " << msg << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "moe-generate --model DIR --prompt-ids 1,2,3 --max-tokens N [--top-logprobs K] [--json]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) return Fail("--model is required");
  std::vector<int32_t> prompt;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_prompt_ids), ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) return Fail("--prompt-ids: '" + std::string(part) + "' is not a token id");
    prompt.push_back(id);
  }
  if (prompt.empty()) return Fail("--prompt-ids: at least one token id is required");
  if (absl::GetFlag(FLAGS_threads) < 0) return Fail("--threads: must be >= 0");

  auto checkpoint = moe::Checkpoint::Open(dir);
  if (!checkpoint.ok()) return Fail(std::string(checkpoint.status().message()));
  auto dense = moe::DenseModel::Load(**checkpoint);
  if (!dense.ok()) return Fail(std::string(dense.status().message()));
  auto shard = moe::ExpertShard::Load(**checkpoint, {});
  if (!shard.ok()) return Fail(std::string(shard.status().message()));
  moe::ThreadPool pool(absl::GetFlag(FLAGS_threads));
  moe::LocalExpertBackend experts(shard->get(), &pool);
  moe::ForwardPass forward(dense->get(), &experts, &pool);

  moe::GreedyOptions opts;
  opts.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  opts.top_logprobs = absl::GetFlag(FLAGS_top_logprobs);
  opts.stop_at_eos = !absl::GetFlag(FLAGS_ignore_eos);
  const bool json = absl::GetFlag(FLAGS_json);
  std::unique_ptr<moe::tokenizer::Tokenizer> tokenizer;
  std::optional<moe::tokenizer::StreamDecoder> text;
  if (absl::GetFlag(FLAGS_decode_text)) {
    auto t = moe::tokenizer::Tokenizer::FromDirectory(dir);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    tokenizer = std::move(*t);
    text.emplace(tokenizer.get(), /*skip_special_tokens=*/true);
  }
  const absl::Status status =
      moe::GenerateGreedy(forward, (*checkpoint)->config(), prompt, opts, [&](const moe::GeneratedToken& t) {
        if (json) {
          nlohmann::json j = {{"id", t.id}, {"logprob", t.logprob}};
          nlohmann::json top = nlohmann::json::array();
          for (const auto& [id, lp] : t.top_logprobs) top.push_back({id, lp});
          j["top_logprobs"] = top;
          if (text) j["text"] = text->Push(t.id).value_or("");
          std::cout << j.dump() << "\n" << std::flush;
        } else if (text) {
          std::cout << text->Push(t.id).value_or("") << std::flush;
        } else {
          std::cout << t.id << " " << std::flush;
        }
      });
  if (text && !json) std::cout << text->Finish();
  if (!json) std::cout << "\n";
  if (!status.ok()) return Fail(std::string(status.message()));
  return 0;
}
