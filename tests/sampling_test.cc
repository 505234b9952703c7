// Decoding controls through the gateway's public API, on the local cluster.
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "deploy/local/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

class SamplingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    LocalClusterOptions o;
    o.model_dir = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";
    o.num_workers = 2;
    o.bin_dir = MOE_BIN_DIR;
    o.worker_threads = 1;
    o.router_threads = 1;
    cluster_ = new LocalCluster(o);
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  std::unique_ptr<moe::v1::Inference::Stub> Stub() {
    return moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address()));
  }
  static moe::v1::GenerateRequest Request(int max_tokens) {
    moe::v1::GenerateRequest r;
    for (uint32_t id : {39u, 301u, 385u, 11u}) r.mutable_token_ids()->add_ids(id);
    r.set_max_tokens(max_tokens);
    return r;
  }
  struct Stream {
    grpc::Status status;
    std::map<uint32_t, std::vector<uint32_t>> ids;  // per sample index
    std::map<uint32_t, std::string> text;
    std::map<uint32_t, moe::v1::GenerateResponse> last;
    moe::v1::Usage usage;
  };
  Stream Generate(const moe::v1::GenerateRequest& req) {
    auto stub = Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(60000));
    // The cluster just started and the machine may be busy: wait for the
    // connection instead of failing fast on a transient connect error.
    ctx.set_wait_for_ready(true);
    auto reader = stub->Generate(&ctx, req);
    Stream s;
    moe::v1::GenerateResponse m;
    while (reader->Read(&m)) {
      for (const auto& t : m.tokens()) s.ids[m.index()].push_back(t.id());
      s.text[m.index()] += m.text();
      if (m.finish_reason() != moe::v1::FINISH_REASON_UNSPECIFIED) s.last[m.index()] = m;
      if (m.has_usage()) s.usage = m.usage();
    }
    s.status = reader->Finish();
    return s;
  }
  moe::v1::CompleteResponse Complete(const moe::v1::GenerateRequest& req, grpc::Status* status) {
    auto stub = Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(60000));
    // The cluster just started and the machine may be busy: wait for the
    // connection instead of failing fast on a transient connect error.
    ctx.set_wait_for_ready(true);
    moe::v1::CompleteResponse resp;
    *status = stub->Complete(&ctx, req, &resp);
    return resp;
  }

  static inline LocalCluster* cluster_ = nullptr;
};

TEST_F(SamplingTest, EveryInvalidParameterIsRejectedNamingItAndTheServerKeepsServing) {
  const std::vector<std::pair<std::function<void(moe::v1::GenerateRequest&)>, std::string>> cases = {
      {[](auto& r) { r.mutable_sampling()->set_temperature(-1); }, "temperature"},
      {[](auto& r) { r.mutable_sampling()->set_top_p(0); }, "top_p"},
      {[](auto& r) { r.mutable_sampling()->set_top_k(5000); }, "top_k"},
      {[](auto& r) { r.mutable_sampling()->set_min_p(2); }, "min_p"},
      {[](auto& r) { r.mutable_sampling()->set_typical_p(1.5f); }, "typical_p"},
      {[](auto& r) { r.mutable_sampling()->set_repetition_penalty(-1); }, "repetition_penalty"},
      {[](auto& r) { r.mutable_sampling()->set_presence_penalty(9); }, "presence_penalty"},
      {[](auto& r) { r.mutable_sampling()->set_frequency_penalty(9); }, "frequency_penalty"},
      {[](auto& r) { (*r.mutable_sampling()->mutable_logit_bias())[4096] = 1; }, "logit_bias"},
      {[](auto& r) { r.add_stop_token_ids(9999); }, "stop_token_ids"},
      {[](auto& r) { r.set_n(0); }, "n:"},
      {[](auto& r) { r.set_n(3); r.set_best_of(2); }, "best_of"},
      {[](auto& r) { r.set_n(17); }, "n:"},
      {[](auto& r) { r.set_max_tokens(0); }, "max_tokens"},
      {[](auto& r) { r.set_max_tokens(4093); }, "exceeds the context of 4096"},
      {[](auto& r) { for (int i = 0; i < 17; ++i) r.add_stop("s" + std::to_string(i)); }, "stop:"},
      {[](auto& r) { r.add_stop(""); }, "stop:"},
      {[](auto& r) { r.mutable_sampling()->set_logprobs(25); }, "logprobs"},
  };
  for (const auto& [set, field] : cases) {
    moe::v1::GenerateRequest r = Request(4);
    set(r);
    const Stream s = Generate(r);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field << ": " << s.status.error_message();
    EXPECT_THAT(s.status.error_message(), HasSubstr(field));
  }
  const Stream ok = Generate(Request(4));
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.ids.at(0).size(), 4u);
}

TEST_F(SamplingTest, StopStringMadeOfTwoNewlineTokensEndsAndIsTrimmed) {
  moe::v1::GenerateRequest r = Request(16);
  r.mutable_sampling()->set_temperature(0);
  (*r.mutable_sampling()->mutable_logit_bias())[198] = 100;  // "\n"
  r.add_stop("\n\n");
  const Stream s = Generate(r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.ids.at(0), (std::vector<uint32_t>{198, 198}));
  EXPECT_EQ(s.text.at(0), "");
  EXPECT_EQ(s.last.at(0).finish_reason(), moe::v1::FINISH_REASON_STOP);
  EXPECT_EQ(s.last.at(0).matched_stop(), "\n\n");
}

TEST_F(SamplingTest, StopTokenIdsEndTheStreamAndMinTokensHoldsEosBack) {
  moe::v1::GenerateRequest r = Request(16);
  r.mutable_sampling()->set_temperature(0);
  (*r.mutable_sampling()->mutable_logit_bias())[777] = 100;
  r.add_stop_token_ids(777);
  Stream s = Generate(r);
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.ids.at(0), std::vector<uint32_t>{777});
  EXPECT_EQ(s.last.at(0).finish_reason(), moe::v1::FINISH_REASON_STOP);

  moe::v1::GenerateRequest m = Request(16);
  m.mutable_sampling()->set_temperature(0);
  (*m.mutable_sampling()->mutable_logit_bias())[4095] = 100;  // eos
  m.mutable_sampling()->set_min_tokens(3);
  s = Generate(m);
  ASSERT_TRUE(s.status.ok());
  ASSERT_EQ(s.ids.at(0).size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_NE(s.ids.at(0)[i], 4095u);
  EXPECT_EQ(s.ids.at(0)[3], 4095u);
  EXPECT_EQ(s.last.at(0).finish_reason(), moe::v1::FINISH_REASON_STOP);
}

TEST_F(SamplingTest, SeededRequestGivesTheSameTokensAloneAndInABusyBatch) {
  moe::v1::GenerateRequest r = Request(24);
  r.mutable_sampling()->set_temperature(0.9f);
  r.mutable_sampling()->set_top_p(0.95f);
  r.mutable_sampling()->set_seed(1234);
  const Stream alone = Generate(r);
  ASSERT_TRUE(alone.status.ok());
  std::vector<std::thread> others;
  for (int i = 0; i < 6; ++i) {
    others.emplace_back([&, i] {
      moe::v1::GenerateRequest o = Request(40);
      o.mutable_token_ids()->set_ids(0, 100 + i);
      o.mutable_sampling()->set_temperature(1.0f);
      Generate(o);
    });
  }
  const Stream busy = Generate(r);
  for (auto& t : others) t.join();
  ASSERT_TRUE(busy.status.ok());
  EXPECT_EQ(alone.ids.at(0), busy.ids.at(0));
}

TEST_F(SamplingTest, BestOfReturnsTheHighestCumulativeLogprobSamples) {
  moe::v1::GenerateRequest all = Request(12);
  all.mutable_sampling()->set_temperature(1.0f);
  all.mutable_sampling()->set_seed(7);
  all.set_n(4);
  grpc::Status st;
  const moe::v1::CompleteResponse four = Complete(all, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(four.choices_size(), 4);
  std::vector<double> lps;
  for (const auto& c : four.choices()) lps.push_back(c.cumulative_logprob());
  std::sort(lps.rbegin(), lps.rend());

  moe::v1::GenerateRequest best = all;
  best.set_n(2);
  best.set_best_of(4);
  const moe::v1::CompleteResponse two = Complete(best, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(two.choices_size(), 2);
  EXPECT_DOUBLE_EQ(two.choices(0).cumulative_logprob(), lps[0]);
  EXPECT_DOUBLE_EQ(two.choices(1).cumulative_logprob(), lps[1]);
  EXPECT_EQ(two.usage().completion_tokens(), 48u);  // best_of samples were generated
}

TEST_F(SamplingTest, StreamingNSamplesInterleaveAndEachFinishes) {
  moe::v1::GenerateRequest r = Request(10);
  r.mutable_sampling()->set_seed(3);
  r.set_n(3);
  const Stream s = Generate(r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_EQ(s.ids.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s.ids.at(i).size(), 10u) << i;
    EXPECT_EQ(s.last.at(i).finish_reason(), moe::v1::FINISH_REASON_LENGTH);
  }
  EXPECT_NE(s.ids.at(0), s.ids.at(1));
  EXPECT_EQ(s.usage.prompt_tokens(), 4u);
  EXPECT_EQ(s.usage.completion_tokens(), 30u);
}

TEST_F(SamplingTest, PromptLogprobsScoreEveryPromptTokenLikeDecodingWould) {
  // Greedy first token after the prompt, with its log-probability.
  moe::v1::GenerateRequest g = Request(1);
  g.mutable_sampling()->set_temperature(0);
  grpc::Status st;
  const moe::v1::CompleteResponse first = Complete(g, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(first.choices(0).tokens_size(), 1);
  const uint32_t next = first.choices(0).tokens(0).id();
  const double next_lp = first.choices(0).tokens(0).logprob();

  // Score prompt + that token: its entry must carry the same log-probability.
  moe::v1::GenerateRequest r = Request(2);
  r.mutable_token_ids()->add_ids(next);
  r.set_prompt_logprobs(3);
  const moe::v1::CompleteResponse scored = Complete(r, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(scored.prompt_tokens_size(), r.token_ids().ids_size());
  EXPECT_EQ(scored.prompt_tokens(0).logprob(), 0.0);
  EXPECT_EQ(scored.prompt_tokens(0).top_logprobs_size(), 0);
  for (int i = 1; i < scored.prompt_tokens_size(); ++i) {
    const auto& t = scored.prompt_tokens(i);
    EXPECT_EQ(t.id(), r.token_ids().ids(i));
    EXPECT_LE(t.logprob(), 0.0);
    ASSERT_EQ(t.top_logprobs_size(), 3);
    EXPECT_GE(t.top_logprobs(0).logprob(), t.top_logprobs(1).logprob());
    EXPECT_GE(t.top_logprobs(0).logprob(), t.logprob());
  }
  EXPECT_NEAR(scored.prompt_tokens(scored.prompt_tokens_size() - 1).logprob(), next_lp, 1e-9);
  EXPECT_EQ(scored.prompt_tokens(scored.prompt_tokens_size() - 1).id(), next);
}

}  // namespace
}  // namespace moe
