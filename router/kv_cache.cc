#include "router/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "glog/logging.h"

namespace moe {

int64_t KvCache::BytesPerBlock(const ModelConfig& config, int64_t block_size_tokens) {
  return static_cast<int64_t>(config.num_hidden_layers) * 2 * block_size_tokens * config.kv_dim() *
         static_cast<int64_t>(sizeof(float));
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const ModelConfig& config, const KvCacheOptions& options,
                                                         const PagesFactory& make_pages) {
  if (options.block_size_tokens < 1 || options.block_size_tokens > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_block_size: must be in [1, 4096] tokens, got ", options.block_size_tokens));
  }
  const int64_t per_block = BytesPerBlock(config, options.block_size_tokens);
  const int64_t blocks = options.capacity_bytes / std::max<int64_t>(per_block, 1);
  if (blocks < 1) {
    return absl::InvalidArgumentError(absl::StrCat("kv_cache_bytes: ", options.capacity_bytes,
                                                   " bytes hold no KV block (one block of ", options.block_size_tokens,
                                                   " tokens takes ", per_block, " bytes)"));
  }
  if (blocks > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("kv_cache_bytes: ", options.capacity_bytes, " bytes make ", blocks,
                                                   " KV blocks, more than 2^30; use larger blocks"));
  }
  const int64_t floats = blocks * (per_block / static_cast<int64_t>(sizeof(float)));
  std::unique_ptr<KvPages> pages;
  if (make_pages) {
    ASSIGN_OR_RETURN(pages, make_pages(floats));
  } else {
    pages = std::make_unique<HostKvPages>(floats);
  }
  return std::unique_ptr<KvCache>(new KvCache(config, options, static_cast<int32_t>(blocks), std::move(pages)));
}

KvCacheOptions KvCache::OptionsForTokens(const ModelConfig& config, int64_t tokens, int num_sequences) {
  KvCacheOptions o;
  o.enable_prefix_caching = false;
  const int64_t blocks = std::max<int64_t>(1, (tokens + o.block_size_tokens - 1) / o.block_size_tokens);
  o.capacity_bytes = blocks * std::max(1, num_sequences) * BytesPerBlock(config, o.block_size_tokens);
  return o;
}

std::unique_ptr<KvCache> KvCache::ForTokens(const ModelConfig& config, int64_t tokens, int num_sequences) {
  const KvCacheOptions o = OptionsForTokens(config, tokens, num_sequences);
  const int32_t n = static_cast<int32_t>(o.capacity_bytes / BytesPerBlock(config, o.block_size_tokens));
  return std::unique_ptr<KvCache>(new KvCache(
      config, o, n, std::make_unique<HostKvPages>(n * (BytesPerBlock(config, o.block_size_tokens) / 4))));
}

KvCache::KvCache(const ModelConfig& config, const KvCacheOptions& options, int32_t num_blocks,
                 std::unique_ptr<KvPages> pages)
    : block_size_(options.block_size_tokens),
      kv_dim_(config.kv_dim()),
      num_layers_(config.num_hidden_layers),
      num_blocks_(num_blocks),
      prefix_caching_(options.enable_prefix_caching),
      pages_(std::move(pages)),
      data_(pages_->data()),
      info_(num_blocks) {
  if (prefix_caching_) tokens_.resize(static_cast<size_t>(num_blocks) * block_size_);
  never_cached_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) never_cached_.push_back(b);  // block 0 on top
}

uint64_t KvCache::ChainHash(uint64_t parent_hash, absl::Span<const int32_t> tokens) {
  // splitmix64 finalizer over (state ^ token), seeded by the parent.
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(parent_hash + 0x9e3779b97f4a7c15ull);
  for (int32_t t : tokens) h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ull));
  return h;
}

void KvCache::LruRemove(int32_t b) {
  BlockInfo& i = info_[b];
  (i.lru_prev >= 0 ? info_[i.lru_prev].lru_next : lru_head_) = i.lru_next;
  (i.lru_next >= 0 ? info_[i.lru_next].lru_prev : lru_tail_) = i.lru_prev;
  i.lru_prev = i.lru_next = -1;
  --num_cached_free_;
}

void KvCache::LruPushBack(int32_t b) {
  BlockInfo& i = info_[b];
  i.lru_prev = lru_tail_;
  i.lru_next = -1;
  (lru_tail_ >= 0 ? info_[lru_tail_].lru_next : lru_head_) = b;
  lru_tail_ = b;
  ++num_cached_free_;
}

int32_t KvCache::Allocate() {
  int32_t b = -1;
  if (!never_cached_.empty()) {
    b = never_cached_.back();
    never_cached_.pop_back();
  } else if (lru_head_ >= 0) {
    b = lru_head_;  // evict the least recently used cached block
    LruRemove(b);
    BlockInfo& i = info_[b];
    by_hash_.erase(i.hash);
    i.registered = false;
  } else {
    return -1;
  }
  info_[b].refs = 1;
  ++num_used_;
  return b;
}

void KvCache::Release(int32_t b) {
  BlockInfo& i = info_[b];
  CHECK_GT(i.refs, 0) << "KV block " << b << " released more often than referenced";
  if (--i.refs > 0) return;
  --num_used_;
  if (i.registered) {
    LruPushBack(b);
  } else {
    never_cached_.push_back(b);
  }
}

void KvCache::CopyBlock(int32_t from, int32_t to) {
  const int64_t floats = static_cast<int64_t>(num_layers_) * 2 * block_size_ * kv_dim_;
  pages_->Copy(Offset(to, 0), Offset(from, 0), floats);
}

int32_t KvCache::Acquire(uint64_t hash, uint64_t parent_hash, absl::Span<const int32_t> tokens) {
  if (!prefix_caching_ || static_cast<int64_t>(tokens.size()) != block_size_) return -1;
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  BlockInfo& i = info_[b];
  if (i.parent_hash != parent_hash ||
      !std::equal(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<int64_t>(b) * block_size_)) {
    return -1;  // a hash collision: treat as a miss
  }
  if (i.refs++ == 0) {
    LruRemove(b);
    ++num_used_;
  }
  return b;
}

void KvCache::Register(int32_t b, uint64_t hash, uint64_t parent_hash, absl::Span<const int32_t> tokens) {
  if (!prefix_caching_ || static_cast<int64_t>(tokens.size()) != block_size_) return;
  BlockInfo& i = info_[b];
  if (i.registered) return;
  if (!by_hash_.try_emplace(hash, b).second) return;  // the same content is cached in another block
  i.registered = true;
  i.hash = hash;
  i.parent_hash = parent_hash;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<int64_t>(b) * block_size_);
}

int64_t SequenceKv::BlocksToReach(int64_t length) const {
  const int64_t bs = cache_->block_size();
  return std::max<int64_t>(0, (length + bs - 1) / bs - static_cast<int64_t>(blocks_.size()));
}

bool SequenceKv::Reserve(int64_t length) {
  const int64_t need = BlocksToReach(length);
  if (need == 0) return true;
  if (need > cache_->num_free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    const int32_t b = cache_->Allocate();
    CHECK_GE(b, 0) << "KV cache: a free block was counted but not found";
    blocks_.push_back(b);
  }
  return true;
}

void SequenceKv::Advance(int64_t length) {
  CHECK_LE(length, static_cast<int64_t>(blocks_.size()) * cache_->block_size())
      << "SequenceKv::Advance past the reserved blocks";
  length_ = std::max(length_, length);
}

bool SequenceKv::Truncate(int64_t length) {
  const int64_t bs = cache_->block_size();
  length = std::clamp<int64_t>(length, 0, length_);
  const size_t keep = static_cast<size_t>((length + bs - 1) / bs);
  while (blocks_.size() > keep) {
    cache_->Release(blocks_.back());
    blocks_.pop_back();
  }
  chain_.resize(std::min(chain_.size(), static_cast<size_t>(length / bs)));
  length_ = length;
  if (length % bs == 0 || cache_->Writable(blocks_.back())) return true;
  // The last block keeps some positions and will be written again: copy it.
  const int32_t old = blocks_.back();
  const int32_t copy = cache_->Allocate();
  if (copy < 0) {
    cache_->Release(old);
    blocks_.pop_back();
    length_ = length / bs * bs;
    return false;
  }
  cache_->CopyBlock(old, copy);
  cache_->Release(old);
  blocks_.back() = copy;
  return true;
}

void SequenceKv::Release() {
  // Last block first: an unreferenced registered block goes to the LRU tail,
  // so a prefix's first blocks stay cached longer than its last ones.
  while (!blocks_.empty()) {
    cache_->Release(blocks_.back());
    blocks_.pop_back();
  }
  chain_.clear();
  length_ = 0;
}

int64_t SequenceKv::AttachCachedPrefix(absl::Span<const int32_t> tokens, int64_t max_positions) {
  if (!cache_->prefix_caching() || length_ != 0 || !blocks_.empty()) return length_;
  const int64_t bs = cache_->block_size();
  max_positions = std::min<int64_t>(max_positions, static_cast<int64_t>(tokens.size()));
  uint64_t parent = 0;
  for (int64_t i = 0; (i + 1) * bs <= max_positions; ++i) {
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t h = KvCache::ChainHash(parent, block_tokens);
    const int32_t b = cache_->Acquire(h, parent, block_tokens);
    if (b < 0) break;
    blocks_.push_back(b);
    chain_.push_back(h);
    length_ += bs;
    parent = h;
  }
  return length_;
}

void SequenceKv::RegisterFullBlocks(absl::Span<const int32_t> tokens) {
  if (!cache_->prefix_caching()) return;
  const int64_t bs = cache_->block_size();
  const int64_t full = std::min<int64_t>(length_, static_cast<int64_t>(tokens.size())) / bs;
  for (int64_t i = static_cast<int64_t>(chain_.size()); i < full; ++i) {
    const uint64_t parent = i == 0 ? 0 : chain_[i - 1];
    const auto block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t h = KvCache::ChainHash(parent, block_tokens);
    cache_->Register(blocks_[i], h, parent, block_tokens);
    chain_.push_back(h);
  }
}

}  // namespace moe
