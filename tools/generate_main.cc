// moe-generate: greedy decoding of a prompt given as token ids, printed as the
// tokens are produced. It drives the same Engine as the router (one request,
// in-process experts), so what it prints is what the cluster serves.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <fstream>
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
#include "absl/synchronization/mutex.h"
#include "core/checkpoint.h"
#include "core/command_line.h"
#include "core/thread_pool.h"
#include "experts/expert_shard.h"
#include "experts/cpu_expert_runner.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "gateway/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "router/dense_model.h"
#include "router/engine.h"
#include "router/cuda/cuda_dense_device.h"
#include "router/forward.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout).");
ABSL_FLAG(std::string, prompt_ids, "", "Comma-separated prompt token ids, e.g. 1,2,3.");
ABSL_FLAG(int, max_tokens, 16, "Number of tokens to generate (>= 1).");
ABSL_FLAG(int, top_logprobs, 0, "Report the k most likely tokens per step (0..20).");
ABSL_FLAG(bool, json, false, "One JSON object per generated token.");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after an end-of-sequence token.");
ABSL_FLAG(int, threads, 0, "Compute threads (0: all available CPUs).");
ABSL_FLAG(std::string, expert_device, "cpu", "Where the experts run: cpu or cuda:N.");
ABSL_FLAG(std::string, device, "cpu", "Where the dense model and the KV cache run: cpu or cuda:N.");
ABSL_FLAG(std::string, prompt_logits_out, "",
          "Also write the logits of every prompt position to this file: little-endian f32, "
          "[prompt tokens, vocab_size], row-major (for comparing against another implementation).");
ABSL_FLAG(bool, decode_text, false,
          "Print the continuation as text (tokenizer.json or tokenizer.json.gz of the model directory).");

namespace {

int Fail(const std::string& msg) {
  std::cerr << "moe-generate: " << msg << "\n";
  return 1;
}

// Hands each token to `print` on the engine thread as it is chosen; Wait
// returns the request's final status.
class PrintingSink : public moe::GenerationSink {
 public:
  explicit PrintingSink(std::function<void(const moe::GeneratedToken&)> print) : print_(std::move(print)) {}
  void OnToken(const moe::GeneratedToken& t) override { print_(t); }
  void OnFinish(const absl::Status& status, moe::FinishReason, int, int) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }
  absl::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

 private:
  const std::function<void(const moe::GeneratedToken&)> print_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

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
  auto device = moe::ParseExpertDevice(absl::GetFlag(FLAGS_expert_device));
  if (!device.ok()) return Fail("--expert-device: " + std::string(device.status().message()));
  moe::ThreadPool pool(absl::GetFlag(FLAGS_threads));
  std::unique_ptr<moe::ExpertRunner> runner;
  if (device->cuda) {
    auto gpu = moe::MakeCudaExpertRunner(std::move(*shard), device->ordinal);
    if (!gpu.ok()) return Fail(std::string(gpu.status().message()));
    runner = std::move(*gpu);
  } else {
    runner = std::make_unique<moe::CpuExpertRunner>(shard->get(), &pool);
  }
  moe::LocalExpertBackend experts(runner.get());
  auto dense_device = moe::ParseExpertDevice(absl::GetFlag(FLAGS_device));
  if (!dense_device.ok()) return Fail("--device: " + std::string(dense_device.status().message()));
  std::unique_ptr<moe::DenseDevice> forward;
  if (dense_device->cuda) {
    auto d = moe::MakeCudaDenseDevice(dense->get(), &experts, dense_device->ordinal);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    forward = std::move(*d);
  } else {
    forward = std::make_unique<moe::ForwardPass>(dense->get(), &experts, &pool);
  }
  const moe::ModelConfig& config = (*checkpoint)->config();
  for (int32_t id : prompt) {
    if (id < 0 || id >= config.vocab_size) {
      return Fail("--prompt-ids: " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(config.vocab_size) + ")");
    }
  }
  if (static_cast<int64_t>(prompt.size()) > config.max_position_embeddings) {
    return Fail("--prompt-ids: " + std::to_string(prompt.size()) + " tokens exceed the context of " +
                std::to_string(config.max_position_embeddings));
  }
  if (const std::string out = absl::GetFlag(FLAGS_prompt_logits_out); !out.empty()) {
    auto cache = forward->CreateKvCache(moe::KvCache::OptionsForTokens(config, static_cast<int64_t>(prompt.size())));
    if (!cache.ok()) return Fail(std::string(cache.status().message()));
    moe::SequenceKv kv(cache->get());
    moe::SequenceInput in{&kv, prompt, /*all_logits=*/true};
    std::vector<float> logits;
    if (absl::Status st = forward->Forward({&in, 1}, &logits); !st.ok()) return Fail(std::string(st.message()));
    std::ofstream f(out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!f) return Fail("--prompt-logits-out: cannot write " + out);
  }

  const int max_tokens = absl::GetFlag(FLAGS_max_tokens);
  const int top_logprobs = absl::GetFlag(FLAGS_top_logprobs);
  if (max_tokens < 1) return Fail("max_tokens: must be >= 1, got " + std::to_string(max_tokens));
  if (top_logprobs < 0 || top_logprobs > 20) {
    return Fail("top_logprobs: must be in [0, 20], got " + std::to_string(top_logprobs));
  }
  moe::GenerationRequest request;
  request.client_id = "moe-generate";
  request.prompt = prompt;
  // Generation stops at the end of the context, as the engine does.
  const int64_t room = config.max_position_embeddings - static_cast<int64_t>(prompt.size());
  request.max_tokens = static_cast<int>(std::min<int64_t>(max_tokens, std::max<int64_t>(room, 1)));
  request.sampling.temperature = 0;
  request.sampling.top_logprobs = top_logprobs;
  request.sampling.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  moe::EngineOptions engine_options;
  engine_options.kv_cache.enable_prefix_caching = false;
  // Room for this one sequence, whole.
  const int64_t bs = engine_options.kv_cache.block_size_tokens;
  const int64_t blocks = (static_cast<int64_t>(prompt.size()) + request.max_tokens + bs - 1) / bs + 1;
  engine_options.kv_cache.capacity_bytes = blocks * moe::KvCache::BytesPerBlock(config, bs);
  auto engine = moe::Engine::Create(forward.get(), engine_options);
  if (!engine.ok()) return Fail(std::string(engine.status().message()));

  const bool json = absl::GetFlag(FLAGS_json);
  std::unique_ptr<moe::tokenizer::Tokenizer> tokenizer;
  std::optional<moe::tokenizer::StreamDecoder> text;
  if (absl::GetFlag(FLAGS_decode_text)) {
    auto t = moe::tokenizer::Tokenizer::FromDirectory(dir);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    tokenizer = std::move(*t);
    text.emplace(tokenizer.get(), /*skip_special_tokens=*/true);
  }
  auto sink = std::make_shared<PrintingSink>([&](const moe::GeneratedToken& t) {
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
  absl::Status status = (*engine)->Submit(std::move(request), sink).status();
  if (status.ok()) status = sink->Wait();
  if (text && !json) std::cout << text->Finish();
  if (!json) std::cout << "\n";
  if (!status.ok()) return Fail(std::string(status.message()));
  return 0;
}
