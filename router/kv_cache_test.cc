#include "router/kv_cache.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

ModelConfig TinyConfig() {
  ModelConfig c;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.hidden_size = 8;
  return c;
}

std::unique_ptr<KvCache> MakeCache(int32_t blocks, int64_t block_size = 4, bool prefix_caching = true) {
  KvCacheOptions o;
  o.block_size_tokens = block_size;
  o.capacity_bytes = blocks * KvCache::BytesPerBlock(TinyConfig(), block_size);
  o.enable_prefix_caching = prefix_caching;
  auto c = KvCache::Create(TinyConfig(), o);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(c).value();
}

std::vector<int32_t> Tokens(int n, int salt = 0) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(100 * salt + i);
  return t;
}

TEST(KvCacheTest, CapacityComesFromBytesAndTooSmallIsAnError) {
  EXPECT_EQ(KvCache::BytesPerBlock(TinyConfig(), 16), 2 * 2 * 16 * 4 * 4);
  KvCacheOptions o;
  o.block_size_tokens = 16;
  o.capacity_bytes = 10 * KvCache::BytesPerBlock(TinyConfig(), 16) + 5;
  auto c = KvCache::Create(TinyConfig(), o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->num_blocks(), 10);
  EXPECT_EQ((*c)->capacity_tokens(), 160);
  o.capacity_bytes = 100;
  auto bad = KvCache::Create(TinyConfig(), o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("kv_cache_bytes: 100 bytes"));
  o.block_size_tokens = 0;
  EXPECT_THAT(std::string(KvCache::Create(TinyConfig(), o).status().message()), HasSubstr("kv_block_size"));
}

TEST(KvCacheTest, ReserveIsAllOrNothingAndReleaseFreesEveryBlock) {
  auto cache = MakeCache(4);
  SequenceKv a(cache.get()), b(cache.get());
  EXPECT_TRUE(a.Reserve(9));  // 3 blocks
  EXPECT_EQ(a.blocks().size(), 3u);
  EXPECT_EQ(cache->num_used_blocks(), 3);
  EXPECT_FALSE(b.Reserve(5));  // needs 2, 1 free
  EXPECT_TRUE(b.blocks().empty());
  EXPECT_EQ(cache->num_free_blocks(), 1);
  a.Advance(9);
  EXPECT_EQ(a.length(), 9);
  a.Release();
  EXPECT_EQ(a.length(), 0);
  EXPECT_EQ(cache->num_used_blocks(), 0);
  EXPECT_TRUE(b.Reserve(16));
}

TEST(KvCacheTest, RegisteredBlocksAreSharedAndEvictedLeastRecentlyUsed) {
  auto cache = MakeCache(4);
  const std::vector<int32_t> t = Tokens(9);
  auto a = std::make_unique<SequenceKv>(cache.get());
  ASSERT_TRUE(a->Reserve(9));
  a->Advance(9);
  a->RegisterFullBlocks(t);  // blocks 0 and 1 are full; 2 is partial
  SequenceKv b(cache.get());
  EXPECT_EQ(b.AttachCachedPrefix(t, 8), 8);
  EXPECT_EQ(b.blocks()[0], a->blocks()[0]);
  EXPECT_EQ(b.blocks()[1], a->blocks()[1]);
  EXPECT_EQ(cache->num_used_blocks(), 3);
  // A different second block stops the match after the first.
  std::vector<int32_t> other = t;
  other[5] = 7;
  SequenceKv c(cache.get());
  EXPECT_EQ(c.AttachCachedPrefix(other, 8), 4);
  c.Release();
  b.Release();
  a.reset();
  EXPECT_EQ(cache->num_used_blocks(), 0);
  EXPECT_EQ(cache->num_cached_blocks(), 2);
  // Allocation takes never-cached blocks first, then evicts the oldest
  // cached block: the prefix's LAST block, released first.
  SequenceKv d(cache.get());
  ASSERT_TRUE(d.Reserve(8));
  EXPECT_EQ(cache->num_cached_blocks(), 2);
  ASSERT_TRUE(d.Reserve(12));
  EXPECT_EQ(cache->num_cached_blocks(), 1);
  SequenceKv e(cache.get());
  EXPECT_EQ(e.AttachCachedPrefix(t, 8), 4);
}

TEST(KvCacheTest, WithoutPrefixCachingNothingIsRegistered) {
  auto cache = MakeCache(4, 4, /*prefix_caching=*/false);
  const std::vector<int32_t> t = Tokens(8);
  SequenceKv a(cache.get());
  ASSERT_TRUE(a.Reserve(8));
  a.Advance(8);
  a.RegisterFullBlocks(t);
  SequenceKv b(cache.get());
  EXPECT_EQ(b.AttachCachedPrefix(t, 8), 0);
  a.Release();
  EXPECT_EQ(cache->num_cached_blocks(), 0);
}

TEST(KvCacheTest, HashCollisionIsAMiss) {
  auto cache = MakeCache(2);
  const std::vector<int32_t> t = Tokens(4), u = Tokens(4, 1);
  SequenceKv a(cache.get());
  ASSERT_TRUE(a.Reserve(4));
  a.Advance(4);
  // Register a's block under the hash that u would have.
  cache->Register(a.blocks()[0], KvCache::ChainHash(0, u), 0, t);
  SequenceKv b(cache.get());
  EXPECT_EQ(b.AttachCachedPrefix(u, 4), 0);
}

TEST(KvCacheTest, TruncateCopiesASharedBlockBeforeItIsWrittenAgain) {
  auto cache = MakeCache(4);
  const std::vector<int32_t> t = Tokens(8);
  SequenceKv a(cache.get());
  ASSERT_TRUE(a.Reserve(8));
  for (int l = 0; l < 2; ++l) {
    for (int i = 0; i < 4 * 4; ++i) cache->keys(a.blocks()[1], l)[i] = static_cast<float>(l * 100 + i);
  }
  a.Advance(8);
  a.RegisterFullBlocks(t);
  const int32_t shared = a.blocks()[1];
  EXPECT_FALSE(cache->Writable(shared));
  ASSERT_TRUE(a.Truncate(6));
  EXPECT_EQ(a.length(), 6);
  EXPECT_NE(a.blocks()[1], shared);
  EXPECT_TRUE(cache->Writable(a.blocks()[1]));
  EXPECT_EQ(cache->keys(a.blocks()[1], 1)[5], 105.0f);
  EXPECT_EQ(cache->num_cached_blocks(), 1);  // the registered original
}

// The pages come from the device (here: host pages that count the copies):
// the cache asks for exactly its blocks' floats, places blocks in them, and
// copies a shared block through the pages, never by itself.
TEST(KvCacheTest, PagesComeFromTheFactoryAndCopiesGoThroughThem) {
  class CountingPages : public KvPages {
   public:
    explicit CountingPages(int64_t floats) : host_(floats) {}
    float* data() override { return host_.data(); }
    void Copy(int64_t to, int64_t from, int64_t n) override {
      ++copies;
      host_.Copy(to, from, n);
    }
    int copies = 0;

   private:
    HostKvPages host_;
  };
  CountingPages* made = nullptr;
  int64_t asked = 0;
  KvCacheOptions o;
  o.block_size_tokens = 4;
  o.capacity_bytes = 4 * KvCache::BytesPerBlock(TinyConfig(), 4) + 100;  // 4 blocks and change
  auto cache = KvCache::Create(TinyConfig(), o, [&](int64_t floats) -> absl::StatusOr<std::unique_ptr<KvPages>> {
    asked = floats;
    auto p = std::make_unique<CountingPages>(floats);
    made = p.get();
    return std::unique_ptr<KvPages>(std::move(p));
  });
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(asked, 4 * KvCache::BytesPerBlock(TinyConfig(), 4) / 4);
  EXPECT_EQ((*cache)->keys(0, 0), made->data());
  SequenceKv a(cache->get());
  ASSERT_TRUE(a.Reserve(8));
  a.Advance(8);
  a.RegisterFullBlocks(Tokens(8));
  ASSERT_TRUE(a.Truncate(6));  // the shared block is copied before it is written again
  EXPECT_EQ(made->copies, 1);

  // A factory's error is the cache's error.
  auto failed = KvCache::Create(TinyConfig(), o, [](int64_t) -> absl::StatusOr<std::unique_ptr<KvPages>> {
    return absl::ResourceExhaustedError("cuda:0: 1 GiB of KV pages, 10 MiB free");
  });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(KvCacheTest, ChainHashDependsOnTheParentAndTheTokens) {
  const std::vector<int32_t> t = Tokens(4);
  EXPECT_EQ(KvCache::ChainHash(0, t), KvCache::ChainHash(0, t));
  EXPECT_NE(KvCache::ChainHash(0, t), KvCache::ChainHash(1, t));
  EXPECT_NE(KvCache::ChainHash(0, t), KvCache::ChainHash(0, Tokens(4, 1)));
}

}  // namespace
}  // namespace moe
