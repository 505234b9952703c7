#include "gateway/api_keys.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

TEST(ApiKeysTest, SkipsCommentsAndBlankLinesAndTrims) {
  auto keys = ApiKeys::Parse("# team keys\n\n  sk-one  \n#sk-commented\nsk-two\r\n", "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Check("Bearer sk-one").ok());
  EXPECT_TRUE(keys->Check("Bearer sk-two").ok());
  EXPECT_TRUE(keys->Check("bearer sk-two").ok());  // the scheme is case-insensitive
  EXPECT_FALSE(keys->Check("Bearer sk-commented").ok());
}

TEST(ApiKeysTest, RejectsMissingMalformedAndWrongKeys) {
  auto keys = ApiKeys::Parse("sk-secret\n", "keys.txt");
  ASSERT_TRUE(keys.ok());
  const absl::Status missing = keys->Check("");
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(missing.message(), HasSubstr("missing API key"));
  EXPECT_THAT(keys->Check("sk-secret").message(), HasSubstr("expected 'Bearer KEY'"));
  EXPECT_THAT(keys->Check("Basic c2stc2VjcmV0").message(), HasSubstr("expected 'Bearer KEY'"));
  EXPECT_THAT(keys->Check("Bearer ").message(), HasSubstr("expected 'Bearer KEY'"));
  const absl::Status wrong = keys->Check("Bearer sk-secreT");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.message(), "invalid API key");  // never echoes the key
  EXPECT_FALSE(keys->Check("Bearer sk-secret-longer").ok());
  EXPECT_FALSE(keys->Check("Bearer sk-secre").ok());
}

TEST(ApiKeysTest, EmptyOrUnreadableFileIsAnError) {
  EXPECT_THAT(ApiKeys::Parse("# nothing\n\n", "keys.txt").status().message(), HasSubstr("keys.txt: holds no key"));
  EXPECT_THAT(ApiKeys::Parse("sk one\n", "keys.txt").status().message(), HasSubstr("line 1"));
  EXPECT_THAT(ApiKeys::Load("/nonexistent/keys.txt").status().message(), HasSubstr("cannot be read"));
}

}  // namespace
}  // namespace moe
