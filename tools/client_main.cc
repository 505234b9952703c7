// moe-client: sends one prompt to a gateway and prints the answer as it streams.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "moe/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "proto/rpc_util.h"
#include "proto/tls_flags.h"

ABSL_FLAG(std::string, gateway, "127.0.0.1:50051", "Gateway address.");
ABSL_FLAG(std::string, prompt, "", "Prompt text.");
ABSL_FLAG(std::string, prompt_ids, "", "Prompt as comma-separated token ids (instead of --prompt).");
ABSL_FLAG(int, max_tokens, 64, "Tokens to generate.");
ABSL_FLAG(double, temperature, -1, "Sampling temperature (0: greedy; negative: the server's default).");
ABSL_FLAG(int, top_k, 0, "Top-k (0: off).");
ABSL_FLAG(double, top_p, 1.0, "Top-p.");
ABSL_FLAG(int64_t, seed, -1, "Random seed (negative: none).");
ABSL_FLAG(bool, allow_special, false, "Recognise special tokens written in the prompt.");
ABSL_FLAG(bool, add_special_tokens, false, "Add the tokenizer's special tokens (e.g. BOS).");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after an end-of-sequence token.");
ABSL_FLAG(std::string, json_schema, "",
          "Structured output: a JSON Schema (its text, or @FILE); the answer is JSON that validates.");
ABSL_FLAG(bool, json_object, false, "Structured output: any JSON object.");
ABSL_FLAG(std::string, regex, "", "Structured output: the answer matches this pattern.");
ABSL_FLAG(std::string, grammar, "", "Structured output: a GBNF grammar (its text, or @FILE) with a root rule.");
ABSL_FLAG(int, max_whitespace, 0, "With --json-schema / --json-object: whitespace allowed per gap (0: compact).");
ABSL_FLAG(bool, json, false, "Print every stream message as one JSON line.");
ABSL_FLAG(bool, info, false, "Print the model description and exit.");
ABSL_FLAG(int64_t, timeout_ms, 300000, "Deadline of the request, ms.");
ABSL_FLAG(std::string, api_key, "",
          "Key for a gateway started with --api-keys-file (sent as 'authorization: Bearer KEY'); default: the "
          "MOE_API_KEY environment variable.");
ABSL_FLAG(bool, tls, false, "Connect with TLS (implied by --tls-ca or --tls-cert); the server's certificate is "
          "verified against --tls-ca, or the system's roots without it.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("moe-client --gateway ADDR --prompt TEXT [--max-tokens N] [--temperature T]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  auto tls = moe::rpc::TlsFromFlags(moe::rpc::TlsRole::kClient, absl::GetFlag(FLAGS_tls));
  if (!tls.ok()) {
    std::cerr << "moe-client: " << tls.status().message() << "\n";
    return 2;
  }
  auto stub = moe::v1::Inference::NewStub(moe::rpc::MakeChannel(absl::GetFlag(FLAGS_gateway), &*tls));
  grpc::ClientContext ctx;
  ctx.set_deadline(moe::rpc::DeadlineIn(absl::GetFlag(FLAGS_timeout_ms)));
  std::string api_key = absl::GetFlag(FLAGS_api_key);
  if (const char* env = std::getenv("MOE_API_KEY"); api_key.empty() && env != nullptr) api_key = env;
  if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
  if (absl::GetFlag(FLAGS_info)) {
    moe::v1::ModelInfo info;
    const grpc::Status s = stub->GetModelInfo(&ctx, moe::v1::GetModelInfoRequest(), &info);
    if (!s.ok()) {
      std::cerr << "moe-client: " << s.error_message() << "\n";
      return 1;
    }
    std::cout << info.DebugString();
    return 0;
  }
  moe::v1::GenerateRequest req;
  if (!absl::GetFlag(FLAGS_prompt_ids).empty()) {
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_prompt_ids), ',', absl::SkipWhitespace())) {
      uint32_t id;
      if (!absl::SimpleAtoi(part, &id)) {
        std::cerr << "moe-client: --prompt-ids: '" << part << "' is not a token id\n";
        return 2;
      }
      req.mutable_token_ids()->add_ids(id);
    }
  } else if (!absl::GetFlag(FLAGS_prompt).empty()) {
    req.set_text(absl::GetFlag(FLAGS_prompt));
  } else {
    std::cerr << "moe-client: give --prompt or --prompt-ids\n";
    return 2;
  }
  req.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  {
    // Structured output (at most one kind; the gateway checks the rest).
    auto text_or_file = [](const std::string& v, std::string* out) {
      if (v.empty() || v[0] != '@') {
        *out = v;
        return true;
      }
      std::ifstream in(v.substr(1));
      std::stringstream ss;
      ss << in.rdbuf();
      *out = ss.str();
      return static_cast<bool>(in);
    };
    moe::v1::Constraint& c = *req.mutable_constraint();
    std::string text;
    int kinds = 0;
    if (!absl::GetFlag(FLAGS_json_schema).empty()) {
      if (!text_or_file(absl::GetFlag(FLAGS_json_schema), &text)) {
        std::cerr << "moe-client: --json-schema: cannot read " << absl::GetFlag(FLAGS_json_schema) << "\n";
        return 2;
      }
      c.set_json_schema(text);
      ++kinds;
    }
    if (absl::GetFlag(FLAGS_json_object)) {
      c.set_json_object(true);
      ++kinds;
    }
    if (!absl::GetFlag(FLAGS_regex).empty()) {
      c.set_regex(absl::GetFlag(FLAGS_regex));
      ++kinds;
    }
    if (!absl::GetFlag(FLAGS_grammar).empty()) {
      if (!text_or_file(absl::GetFlag(FLAGS_grammar), &text)) {
        std::cerr << "moe-client: --grammar: cannot read " << absl::GetFlag(FLAGS_grammar) << "\n";
        return 2;
      }
      c.set_grammar(text);
      ++kinds;
    }
    if (kinds > 1) {
      std::cerr << "moe-client: give at most one of --json-schema, --json-object, --regex, --grammar\n";
      return 2;
    }
    if (absl::GetFlag(FLAGS_max_whitespace) != 0) c.set_max_whitespace(absl::GetFlag(FLAGS_max_whitespace));
    if (kinds == 0 && absl::GetFlag(FLAGS_max_whitespace) == 0) req.clear_constraint();
  }
  req.set_allow_special_tokens(absl::GetFlag(FLAGS_allow_special));
  req.set_add_special_tokens(absl::GetFlag(FLAGS_add_special_tokens));
  auto* sp = req.mutable_sampling();
  if (absl::GetFlag(FLAGS_temperature) >= 0) sp->set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  if (absl::GetFlag(FLAGS_top_k) > 0) sp->set_top_k(absl::GetFlag(FLAGS_top_k));
  if (absl::GetFlag(FLAGS_top_p) < 1.0) sp->set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  if (absl::GetFlag(FLAGS_seed) >= 0) sp->set_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
  if (absl::GetFlag(FLAGS_ignore_eos)) sp->set_ignore_eos(true);

  const bool json = absl::GetFlag(FLAGS_json);
  auto reader = stub->Generate(&ctx, req);
  moe::v1::GenerateResponse msg;
  moe::v1::GenerateResponse last;
  while (reader->Read(&msg)) {
    if (json) {
      nlohmann::json j = {{"text", msg.text()}};
      nlohmann::json ids = nlohmann::json::array();
      for (const auto& t : msg.tokens()) ids.push_back(t.id());
      j["ids"] = ids;
      if (msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) {
        j["finish_reason"] = moe::v1::FinishReason_Name(msg.finish_reason());
        j["prompt_tokens"] = msg.usage().prompt_tokens();
        j["completion_tokens"] = msg.usage().completion_tokens();
      }
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << msg.text() << std::flush;
    }
    if (msg.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) last = msg;
  }
  const grpc::Status status = reader->Finish();
  if (!json) std::cout << "\n";
  if (!status.ok()) {
    std::cerr << "moe-client: " << moe::v1::FinishReason_Name(last.finish_reason()) << " "
              << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) << ": " << status.error_message() << "\n";
    return 1;
  }
  if (!json) {
    std::cerr << "[" << moe::v1::FinishReason_Name(last.finish_reason()) << ", " << last.usage().prompt_tokens()
              << " prompt + " << last.usage().completion_tokens() << " completion tokens]\n";
  }
  return 0;
}
