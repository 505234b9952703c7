// moe-tokenizer-bench: single-threaded encode throughput of the tokenizer.
//
//   moe-tokenizer-bench [--tokenizers DIR,DIR,...] [--mb 1] [--runs 5] [--doc_bytes 4096]
//
// Builds a deterministic text of at least --mb MiB that mixes English prose,
// Korean prose, source code and the strings of the tokenizer test corpus,
// cut into documents of about --doc_bytes (a prompt each), and encodes every
// document with each tokenizer (allow_special and add_special_tokens off, as
// for user text). Reports the load time, the first pass (merge cache cold:
// a fresh tokenizer) and the best of --runs passes (cache warm, as in a
// serving gateway), in MB/s (10^6 bytes of UTF-8 input) and tokens/s.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/command_line.h"
#include "gateway/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

#ifndef MOE_TESTDATA_DIR
#define MOE_TESTDATA_DIR "tests/testdata"
#endif

ABSL_FLAG(std::string, tokenizers,
          MOE_TESTDATA_DIR "/tokenizers/qwen3," MOE_TESTDATA_DIR "/tokenizers/mistral," MOE_TESTDATA_DIR
                           "/tokenizers/llama3," MOE_TESTDATA_DIR "/tokenizers/deepseek_v3",
          "Comma-separated tokenizer directories (tokenizer.json or tokenizer.json.gz).");
ABSL_FLAG(std::string, corpus, MOE_TESTDATA_DIR "/tokenizers/corpus.json",
          "JSON array of strings mixed into the text (empty: none).");
ABSL_FLAG(double, mb, 1.0, "Size of the text to encode, in MiB.");
ABSL_FLAG(int, runs, 5, "Passes over the text per tokenizer; the best is reported.");
ABSL_FLAG(int, doc_bytes, 4096, "Approximate size of one document (one Encode call), in bytes.");

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kEnglish[] = {
    "The committee met on Tuesday to review the quarterly results. Revenue grew by 12 percent, driven mostly by "
    "the new subscription plans, while operating costs stayed roughly flat. Several members asked whether the "
    "growth would continue into the next year, and the finance team promised a detailed forecast by March.",
    "Mixture-of-experts models route every token to a small subset of feed-forward networks. Because only two or "
    "eight experts out of dozens are active for a given token, the compute per token stays low even though the "
    "total parameter count is very large. Serving such a model well means keeping the experts' weights close to "
    "the accelerators that use them.",
    "She packed her bag the night before: a notebook, two pencils, an old camera that had belonged to her "
    "grandfather, and a map of the coastal path. The forecast promised rain after noon, so she planned to leave "
    "at dawn and reach the lighthouse before the weather turned.",
    "If you can't reproduce the bug on a clean checkout, check whether your environment differs: compiler "
    "version, library versions, locale settings, and even the time zone have all caused surprising failures in "
    "the past. Write down what you tried; it'll save the next person hours.",
    "In 1969, the Apollo 11 mission landed two astronauts on the Moon. Neil Armstrong and Buzz Aldrin spent about "
    "21 hours on the lunar surface, collected 47.5 pounds of material, and returned safely to Earth on July 24.",
};

constexpr const char* kKorean[] = {
    "오늘 회의에서는 다음 분기 계획을 논의했습니다. 새로운 서비스 출시 일정은 예정보다 2주 늦어질 것으로 보이며, "
    "그 대신 품질 검증 기간을 충분히 확보하기로 했습니다. 각 팀은 금요일까지 세부 일정을 공유해 주시기 바랍니다.",
    "서울의 봄은 짧지만 아름답습니다. 4월이 되면 한강 주변과 여의도 공원에 벚꽃이 피고, 주말마다 많은 사람들이 "
    "산책을 하거나 자전거를 타러 나옵니다. 저녁이 되면 강바람이 꽤 차가워서 얇은 겉옷을 챙기는 것이 좋습니다.",
    "전문가 혼합 모델은 각 토큰을 소수의 전문가 네트워크로만 보내기 때문에, 전체 매개변수가 많아도 토큰당 계산량은 "
    "크지 않습니다. 하지만 전문가 가중치를 여러 장치에 나누어 두면 통신 비용이 늘어나므로 배치 크기와 배치 방식을 "
    "신중하게 정해야 합니다.",
    "할머니 댁에 가면 언제나 따뜻한 된장찌개와 갓 지은 밥이 기다리고 있었다. 마당의 감나무에는 가을마다 주황색 감이 "
    "주렁주렁 열렸고, 우리는 그 감을 따서 처마 밑에 곶감으로 말리곤 했다.",
};

constexpr const char* kCode[] = {
    "def moving_average(values, window):\n"
    "    \"\"\"Return the simple moving average of `values` over `window` items.\"\"\"\n"
    "    if window <= 0:\n"
    "        raise ValueError(f\"window must be positive, got {window}\")\n"
    "    total = sum(values[:window])\n"
    "    out = [total / window]\n"
    "    for i in range(window, len(values)):\n"
    "        total += values[i] - values[i - window]\n"
    "        out.append(total / window)\n"
    "    return out\n",
    "absl::StatusOr<std::vector<int32_t>> ParseIds(absl::string_view text) {\n"
    "  std::vector<int32_t> ids;\n"
    "  for (absl::string_view part : absl::StrSplit(text, ',')) {\n"
    "    int32_t id = 0;\n"
    "    if (!absl::SimpleAtoi(part, &id)) {\n"
    "      return absl::InvalidArgumentError(absl::StrCat(\"'\", part, \"' is not an id\"));\n"
    "    }\n"
    "    ids.push_back(id);\n"
    "  }\n"
    "  return ids;\n"
    "}\n",
    "{\n  \"model\": \"qwen3-moe\",\n  \"max_tokens\": 256,\n  \"temperature\": 0.7,\n"
    "  \"messages\": [{\"role\": \"user\", \"content\": \"Summarize the report.\"}],\n"
    "  \"stop\": [\"\\n\\n\", \"</s>\"]\n}\n",
    "#!/bin/sh\nset -eu\nfor f in \"$@\"; do\n  if [ -f \"$f\" ]; then\n    sha256sum \"$f\" >> checksums.txt\n"
    "  else\n    echo \"missing: $f\" >&2\n  fi\ndone\n",
    "SELECT user_id, COUNT(*) AS n_orders, SUM(total_cents) / 100.0 AS revenue\n"
    "FROM orders\nWHERE created_at >= '2024-01-01' AND status <> 'cancelled'\n"
    "GROUP BY user_id\nHAVING COUNT(*) > 3\nORDER BY revenue DESC\nLIMIT 50;\n",
};

// splitmix64: a fixed seed gives the same text on every machine.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Documents of about `doc_bytes` each, `total_bytes` in all: paragraphs picked
// at random (English and Korean prose, code, the corpus strings), each one
// followed by a varying reference number so that not every word repeats.
std::vector<std::string> BuildDocuments(const std::vector<std::string>& corpus, size_t total_bytes,
                                        size_t doc_bytes) {
  std::vector<std::string> paragraphs;
  for (const char* p : kEnglish) paragraphs.emplace_back(p);
  for (const char* p : kKorean) paragraphs.emplace_back(p);
  for (const char* p : kCode) paragraphs.emplace_back(p);
  for (const std::string& s : corpus) {
    if (!s.empty()) paragraphs.push_back(s);
  }
  uint64_t rng = 20240601;
  std::vector<std::string> docs;
  size_t size = 0;
  while (size < total_bytes) {
    std::string doc;
    while (doc.size() < doc_bytes) {
      doc += paragraphs[NextRandom(&rng) % paragraphs.size()];
      absl::StrAppend(&doc, " [", NextRandom(&rng) % 100000, "]\n\n");
    }
    size += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

absl::StatusOr<std::vector<std::string>> ReadCorpus(const std::string& path) {
  if (path.empty()) return std::vector<std::string>();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON array of strings: ", e.what()));
  }
}

struct Pass {
  double seconds = 0;
  size_t tokens = 0;
};

absl::StatusOr<Pass> EncodeAll(const moe::tokenizer::Tokenizer& tok, const std::vector<std::string>& docs) {
  const moe::tokenizer::EncodeOptions options{.add_special_tokens = false, .allow_special = false};
  Pass pass;
  const auto start = Clock::now();
  for (const std::string& doc : docs) {
    auto ids = tok.Encode(doc, options);
    if (!ids.ok()) return ids.status();
    pass.tokens += ids->size();
  }
  pass.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return pass;
}

int Fail(absl::string_view msg) {
  std::cerr << "moe-tokenizer-bench: " << msg << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("moe-tokenizer-bench [--tokenizers DIR,...] [--mb 1] [--runs 5] [--doc_bytes 4096]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  auto corpus = ReadCorpus(absl::GetFlag(FLAGS_corpus));
  if (!corpus.ok()) return Fail(corpus.status().message());
  const auto total_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_mb) * (1 << 20));
  const std::vector<std::string> docs =
      BuildDocuments(*corpus, total_bytes, static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_doc_bytes))));
  size_t bytes = 0;
  for (const std::string& d : docs) bytes += d.size();
  std::printf("text: %zu bytes in %zu documents; %d passes per tokenizer, single thread\n\n", bytes, docs.size(),
              runs);
  std::printf("| tokenizer | load (ms) | tokens | bytes/token | first pass MB/s | best MB/s | best tokens/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (absl::string_view dir : absl::StrSplit(absl::GetFlag(FLAGS_tokenizers), ',', absl::SkipEmpty())) {
    const auto load_start = Clock::now();
    auto tok = moe::tokenizer::Tokenizer::FromDirectory(std::string(dir));
    if (!tok.ok()) return Fail(tok.status().message());
    const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
    Pass first, best;
    for (int r = 0; r < runs; ++r) {
      auto pass = EncodeAll(**tok, docs);
      if (!pass.ok()) return Fail(absl::StrCat(dir, ": ", pass.status().message()));
      if (r == 0) first = *pass;
      if (r == 0 || pass->seconds < best.seconds) best = *pass;
    }
    const std::vector<absl::string_view> parts = absl::StrSplit(dir, '/', absl::SkipEmpty());
    const std::string name = parts.empty() ? std::string(dir) : std::string(parts.back());
    std::printf("| %s | %.0f | %zu | %.2f | %.1f | %.1f | %.0f |\n", name.c_str(), load_ms, best.tokens,
                static_cast<double>(bytes) / static_cast<double>(std::max<size_t>(best.tokens, 1)),
                static_cast<double>(bytes) / first.seconds / 1e6, static_cast<double>(bytes) / best.seconds / 1e6,
                static_cast<double>(best.tokens) / best.seconds);
    std::fflush(stdout);
  }
  return 0;
}
