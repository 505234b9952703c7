#include "gateway/generate_call.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

class GenerateCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = tokenizer::Tokenizer::FromDirectory(std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral");
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = std::move(*t);
    info_.set_vocab_size(4096);
    info_.set_context_length(4096);
  }
  moe::v1::GenerateRequest Base() {
    moe::v1::GenerateRequest r;
    r.mutable_token_ids()->add_ids(1);
    r.mutable_token_ids()->add_ids(2);
    r.set_max_tokens(8);
    return r;
  }
  absl::Status Prepare(const moe::v1::GenerateRequest& r, bool streaming = true) {
    return PrepareRequest(r, *tok_, info_, "req", RequestLimits(), streaming).status();
  }
  int32_t Id(const std::string& token) {
    auto id = tok_->TokenToId(token);
    EXPECT_TRUE(id.has_value()) << token;
    return id.value_or(0);
  }
  static moe::internal::v1::RouterGenerateResponse Tok(uint32_t id, double lp = -1.0, uint32_t index = 0) {
    moe::internal::v1::RouterGenerateResponse m;
    m.set_index(index);
    auto* t = m.add_tokens();
    t->set_id(id);
    t->set_logprob(lp);
    return m;
  }
  static moe::internal::v1::RouterGenerateResponse End(uint32_t index = 0) {
    moe::internal::v1::RouterGenerateResponse m;
    m.set_index(index);
    m.set_finish_reason(moe::v1::FINISH_REASON_LENGTH);
    m.set_prompt_tokens(2);
    return m;
  }

  std::unique_ptr<tokenizer::Tokenizer> tok_;
  moe::v1::ModelInfo info_;
};

TEST_F(GenerateCallTest, ValidationMatrixNamesEveryField) {
  struct Case {
    std::function<void(moe::v1::GenerateRequest&)> set;
    std::string want;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.mutable_sampling()->set_temperature(-0.5f); }, "temperature"},
      {[](auto& r) { r.mutable_sampling()->set_temperature(INFINITY); }, "temperature"},
      {[](auto& r) { r.mutable_sampling()->set_top_p(0); }, "top_p: must be in (0, 1]"},
      {[](auto& r) { r.mutable_sampling()->set_top_p(1.01f); }, "top_p"},
      {[](auto& r) { r.mutable_sampling()->set_top_k(-1); }, "top_k"},
      {[](auto& r) { r.mutable_sampling()->set_top_k(4097); }, "top_k: must be 0 (off) or in [1, 4096]"},
      {[](auto& r) { r.mutable_sampling()->set_min_p(1.5f); }, "min_p: must be in [0, 1]"},
      {[](auto& r) { r.mutable_sampling()->set_typical_p(-0.1f); }, "typical_p"},
      {[](auto& r) { r.mutable_sampling()->set_repetition_penalty(0); }, "repetition_penalty: must be in (0, 2]"},
      {[](auto& r) { r.mutable_sampling()->set_presence_penalty(2.5f); }, "presence_penalty: must be in [-2, 2]"},
      {[](auto& r) { r.mutable_sampling()->set_frequency_penalty(-3); }, "frequency_penalty"},
      {[](auto& r) { (*r.mutable_sampling()->mutable_logit_bias())[5000] = 1; }, "logit_bias: token id 5000"},
      {[](auto& r) { (*r.mutable_sampling()->mutable_logit_bias())[5] = 101; }, "logit_bias"},
      {[](auto& r) { r.add_stop_token_ids(4096); }, "stop_token_ids"},
      {[](auto& r) { r.set_n(0); }, "n: must be in [1, 16]"},
      {[](auto& r) { r.set_n(17); }, "n: must be in [1, 16]"},
      {[](auto& r) { r.set_n(2); r.set_best_of(1); }, "best_of"},
      {[](auto& r) { r.set_best_of(17); }, "best_of"},
      {[](auto& r) { r.set_max_tokens(0); }, "max_tokens: must be >= 1"},
      {[](auto& r) { r.set_max_tokens(4095); }, "max_tokens: prompt (2 tokens) + max_tokens (4095) exceeds the context of 4096"},
      {[](auto& r) { for (int i = 0; i < 17; ++i) r.add_stop("x" + std::to_string(i)); }, "stop: at most 16"},
      {[](auto& r) { r.add_stop(""); }, "stop: string 0 is empty"},
      {[](auto& r) { r.mutable_sampling()->set_logprobs(21); }, "logprobs"},
      {[](auto& r) { r.set_prompt_logprobs(21); }, "prompt_logprobs"},
      {[](auto& r) { r.mutable_sampling()->set_min_tokens(-1); }, "min_tokens"},
      {[](auto& r) { r.clear_token_ids(); }, "prompt"},
      {[](auto& r) { r.mutable_constraint()->set_regex(""); }, "constraint.regex: empty"},
      {[](auto& r) { r.mutable_constraint()->set_regex(std::string(65537, 'a')); }, "constraint.regex: 65537 bytes"},
      {[](auto& r) { r.mutable_constraint()->mutable_choice(); }, "constraint.choice.options: 0 options"},
      {[](auto& r) { r.mutable_constraint()->mutable_choice()->add_options(""); }, "options[0]: 0 bytes"},
  };
  for (const Case& c : cases) {
    moe::v1::GenerateRequest r = Base();
    c.set(r);
    const absl::Status s = Prepare(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.want));
  }
  moe::v1::GenerateRequest ok = Base();
  ok.set_n(2);
  ok.set_best_of(4);
  EXPECT_THAT(std::string(Prepare(ok, /*streaming=*/true).message()), HasSubstr("best_of: must equal n when streaming"));
  EXPECT_TRUE(Prepare(ok, /*streaming=*/false).ok());
  EXPECT_TRUE(Prepare(Base()).ok());
  // Constraint fields are checked by name.
  moe::v1::GenerateRequest json = Base();
  json.mutable_constraint()->set_json_object(true);
  json.mutable_constraint()->set_max_whitespace(8);
  EXPECT_TRUE(Prepare(json).ok());
  json.mutable_constraint()->set_max_whitespace(129);
  EXPECT_THAT(std::string(Prepare(json).message()), HasSubstr("constraint.max_whitespace: 129, must be 0 to 128"));
  json.mutable_constraint()->set_json_object(false);
  json.mutable_constraint()->clear_max_whitespace();
  EXPECT_EQ(Prepare(json).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Prepare(json).message()), HasSubstr("constraint.json_object: must be true"));
  moe::v1::GenerateRequest grammar = Base();
  grammar.mutable_constraint()->set_grammar(std::string(70000, 'x'));
  EXPECT_THAT(std::string(Prepare(grammar).message()), HasSubstr("constraint.grammar: 70000 bytes, must be 1 to 65536"));
  grammar.mutable_constraint()->set_grammar("root ::= \"a\"");
  grammar.mutable_constraint()->set_max_whitespace(2);
  EXPECT_THAT(std::string(Prepare(grammar).message()), HasSubstr("constraint.max_whitespace: only with json_schema"));
  moe::v1::GenerateRequest regex = Base();
  regex.mutable_constraint()->set_regex("[a-z]+");
  EXPECT_TRUE(Prepare(regex).ok());
}

TEST_F(GenerateCallTest, StopStringAcrossTokensIsCutBeforeTheMatch) {
  moe::v1::GenerateRequest r = Base();
  r.add_stop("ubaff");
  auto p = PrepareRequest(r, *tok_, info_, "req", RequestLimits(), true);
  ASSERT_TRUE(p.ok());
  ResponseTranslator tr(tok_.get(), *p);
  std::string text;
  auto o1 = tr.Translate(Tok(3658));  // "iles"
  ASSERT_TRUE(o1.ok());
  if (o1->message) text += o1->message->text();
  auto o2 = tr.Translate(Tok(392));  // "ub"
  if (o2->message) text += o2->message->text();
  auto o3 = tr.Translate(Tok(2649));  // "aff": completes "ubaff"
  ASSERT_TRUE(o3->message.has_value());
  text += o3->message->text();
  EXPECT_EQ(text, "iles");
  EXPECT_EQ(o3->message->finish_reason(), moe::v1::FINISH_REASON_STOP);
  EXPECT_EQ(o3->message->matched_stop(), "ubaff");
  EXPECT_TRUE(o3->all_done);
  EXPECT_EQ(o3->message->usage().completion_tokens(), 3u);
  // The router's own last message (the one carrying prompt_tokens) never
  // came: the prompt's length is still reported.
  EXPECT_EQ(o3->message->usage().prompt_tokens(), 2u);
  EXPECT_EQ(tr.Result().usage().prompt_tokens(), 2u);
}

TEST_F(GenerateCallTest, DoubleNewlineMadeOfTwoTokens) {
  moe::v1::GenerateRequest r = Base();
  r.add_stop("\n\n");
  auto p = PrepareRequest(r, *tok_, info_, "req", RequestLimits(), true);
  ASSERT_TRUE(p.ok());
  ResponseTranslator tr(tok_.get(), *p);
  const int32_t nl = Id("\xC4\x8A");  // byte-level "\n"
  auto o1 = tr.Translate(Tok(Id("H")));
  auto o2 = tr.Translate(Tok(nl));
  std::string text = (o1->message ? o1->message->text() : "") + (o2->message ? o2->message->text() : "");
  EXPECT_FALSE(o2->all_done);
  auto o3 = tr.Translate(Tok(nl));
  ASSERT_TRUE(o3->message.has_value());
  text += o3->message->text();
  EXPECT_EQ(text, "H");
  EXPECT_EQ(o3->message->matched_stop(), "\n\n");
}

TEST_F(GenerateCallTest, StopStringEndingInsideAMultiByteCharacterSplitOverByteTokens) {
  moe::v1::GenerateRequest r = Base();
  r.add_stop("f\xC3\xA9");  // "fé": its last character arrives as two byte tokens
  auto p = PrepareRequest(r, *tok_, info_, "req", RequestLimits(), true);
  ASSERT_TRUE(p.ok());
  ResponseTranslator tr(tok_.get(), *p);
  std::string text;
  for (int32_t id : {Id("ca"), Id("f"), Id("\xC3\x83") /* byte C3 */, Id("\xC2\xA9") /* byte A9 */}) {
    auto o = tr.Translate(Tok(static_cast<uint32_t>(id)));
    ASSERT_TRUE(o.ok());
    if (o->message) {
      text += o->message->text();
      // No delta ever holds a partial character.
      EXPECT_EQ(o->message->text().find('\xC3'), std::string::npos);
    }
  }
  EXPECT_EQ(text, "ca");
}

TEST_F(GenerateCallTest, TextWithoutStopIsReleasedAtTheEnd) {
  moe::v1::GenerateRequest r = Base();
  r.add_stop("zzzz");
  auto p = PrepareRequest(r, *tok_, info_, "req", RequestLimits(), true);
  ResponseTranslator tr(tok_.get(), *p);
  std::string text;
  for (uint32_t id : {3658u, 392u, 2649u}) {
    auto o = tr.Translate(Tok(id));
    if (o->message) text += o->message->text();
  }
  auto end = tr.Translate(End());
  ASSERT_TRUE(end->message.has_value());
  text += end->message->text();
  EXPECT_EQ(text, "ilesubaff");
  EXPECT_EQ(end->message->finish_reason(), moe::v1::FINISH_REASON_LENGTH);
  EXPECT_TRUE(end->all_done);
}

TEST_F(GenerateCallTest, BestOfReturnsTheNHighestCumulativeLogprobs) {
  moe::v1::GenerateRequest r = Base();
  r.set_n(2);
  r.set_best_of(4);
  auto p = PrepareRequest(r, *tok_, info_, "req", RequestLimits(), /*streaming=*/false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->router.n(), 4u);
  ResponseTranslator tr(tok_.get(), *p);
  const double lps[4] = {-3.0, -0.5, -2.0, -1.0};
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(tr.Translate(Tok(3658, lps[i], i)).ok());
    ASSERT_TRUE(tr.Translate(End(i)).ok());
  }
  const moe::v1::CompleteResponse res = tr.Result();
  ASSERT_EQ(res.choices_size(), 2);
  EXPECT_DOUBLE_EQ(res.choices(0).cumulative_logprob(), -0.5);
  EXPECT_DOUBLE_EQ(res.choices(1).cumulative_logprob(), -1.0);
  EXPECT_EQ(res.choices(0).index(), 0u);
  EXPECT_EQ(res.choices(1).index(), 1u);
  EXPECT_EQ(res.usage().completion_tokens(), 4u);
}

}  // namespace
}  // namespace moe
