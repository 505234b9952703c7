// KvCache: the paged key/value cache of the router, and SequenceKv, one
// sequence's block table over it.
//
// Layout: the cache is one arena of `num_blocks` fixed-size blocks. A block
// holds `block_size_tokens` consecutive positions of one sequence for every
// layer: block b, layer l is [K: block_size x kv_dim][V: block_size x kv_dim],
// contiguous. Position p of a sequence lives in block table[p / block_size] at
// slot p % block_size. The arena is allocated once (capacity in bytes) and
// its pages are touched only as blocks are first used: resident memory grows
// with use (freed blocks that hold prefix-cache entries keep their pages, so
// under varied traffic it reaches the capacity) and never exceeds it. The
// capacity is therefore the memory budget of the cache.
//
// Prefix caching: a FULL block whose positions are all computed can be
// registered under the hash of every token up to and including it (a chain:
// hash(block i) = H(hash(block i-1), tokens of block i)). A later sequence
// with the same tokens takes a reference on the registered block instead of
// recomputing it. K/V of position p are a deterministic function of tokens
// 0..p (the forward pass is batch-invariant), so reuse is bitwise exact.
// Blocks are reference counted; a registered block nobody references stays
// cached and is evicted least-recently-used when a block is needed.
// Registered blocks are never written again: only positions >= a sequence's
// length are written, and those never lie in a full or shared block.
//
// Ownership and thread-safety: one thread uses a cache and its sequences (the
// engine thread); nothing here locks.
#ifndef MOE_ROUTER_KV_CACHE_H_
#define MOE_ROUTER_KV_CACHE_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/attention.h"
#include "core/model_config.h"

namespace moe {

struct KvCacheOptions {
  // Positions per block.
  int64_t block_size_tokens = 16;
  // Size of the arena; the number of blocks is capacity_bytes / BytesPerBlock.
  int64_t capacity_bytes = int64_t{1} << 30;
  // Off: nothing is registered or looked up; freed blocks are reused at once.
  bool enable_prefix_caching = true;
};

// The memory that holds a KV cache's blocks, where the dense device computes:
// host memory for the CPU device (HostKvPages), device memory for a GPU one.
// KvCache keeps the block tables and the prefix cache; it reaches the pages
// only through data() (handed to the device's kernels, never dereferenced by
// the cache itself) and Copy (copy-on-write of a shared block).
class KvPages {
 public:
  virtual ~KvPages() = default;
  // The first of the cache's floats (num_blocks x BytesPerBlock / 4).
  virtual float* data() = 0;
  // floats [to, to + n) = floats [from, from + n).
  virtual void Copy(int64_t to, int64_t from, int64_t n) = 0;
};

// Host memory, allocated at once but not initialised: the OS commits pages
// as blocks are first written, so resident memory grows with use.
class HostKvPages : public KvPages {
 public:
  explicit HostKvPages(int64_t floats) : data_(std::make_unique_for_overwrite<float[]>(static_cast<size_t>(floats))) {}
  float* data() override { return data_.get(); }
  void Copy(int64_t to, int64_t from, int64_t n) override {
    std::memcpy(&data_[to], &data_[from], static_cast<size_t>(n) * sizeof(float));
  }

 private:
  std::unique_ptr<float[]> data_;
};

class KvCache {
 public:
  // INVALID_ARGUMENT when the options give no block at all (naming the sizes).
  // `make_pages` allocates the blocks' memory (floats in all); default: host memory.
  using PagesFactory = std::function<absl::StatusOr<std::unique_ptr<KvPages>>(int64_t floats)>;
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const ModelConfig& config, const KvCacheOptions& options,
                                                         const PagesFactory& make_pages = nullptr);
  // A cache for `num_sequences` sequences of up to `tokens` positions each
  // (blocks of 16, no prefix caching): for single-sequence tools and tests.
  static std::unique_ptr<KvCache> ForTokens(const ModelConfig& config, int64_t tokens, int num_sequences = 1);
  // The options ForTokens uses, for a device's CreateKvCache.
  static KvCacheOptions OptionsForTokens(const ModelConfig& config, int64_t tokens, int num_sequences = 1);
  // Bytes of one block: layers x 2 (K, V) x block_size x kv_dim x 4.
  static int64_t BytesPerBlock(const ModelConfig& config, int64_t block_size_tokens);

  int64_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return num_blocks_; }
  int64_t capacity_tokens() const { return static_cast<int64_t>(num_blocks_) * block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks referenced by at least one sequence.
  int32_t num_used_blocks() const { return num_used_; }
  // Blocks that can be handed out now: never used, or cached and unreferenced.
  int32_t num_free_blocks() const { return num_blocks_ - num_used_; }
  // Unreferenced blocks still holding a prefix-cache entry (part of the free ones).
  int32_t num_cached_blocks() const { return num_cached_free_; }

  // Keys and values of `layer` in `block`: [block_size, kv_dim] each, in the
  // pages' memory (host memory only for HostKvPages).
  float* keys(int32_t block, int layer) { return data_ + Offset(block, layer); }
  float* values(int32_t block, int layer) { return data_ + Offset(block, layer) + block_size_ * kv_dim_; }
  const float* keys(int32_t block, int layer) const { return data_ + Offset(block, layer); }
  const float* values(int32_t block, int layer) const { return data_ + Offset(block, layer) + block_size_ * kv_dim_; }

  // Layer `layer`, KV head `kv_head` of every block as core/attention.h's
  // paged view, over the block table `table`.
  PagedKvHead HeadView(int layer, int64_t kv_head, int64_t head_dim, const int32_t* table) const {
    PagedKvHead v;
    v.base = data_ + Offset(0, layer) + kv_head * head_dim;
    v.table = table;
    v.block_size = block_size_;
    v.block_stride = static_cast<int64_t>(num_layers_) * 2 * block_size_ * kv_dim_;
    v.row_stride = kv_dim_;
    v.value_offset = block_size_ * kv_dim_;
    return v;
  }

  // A block with one reference, or -1 when every block is referenced. Takes a
  // never-registered block first, else evicts the least recently used cached one.
  int32_t Allocate();
  // Drops one reference; an unreferenced registered block stays cached.
  void Release(int32_t block);
  // Whether a sequence may write into `block`: it alone references it and it
  // is not registered in the prefix cache.
  bool Writable(int32_t block) const { return info_[block].refs == 1 && !info_[block].registered; }
  // Copies every layer's keys and values of block `from` into block `to`.
  void CopyBlock(int32_t from, int32_t to);

  // The registered block for (hash, parent_hash, tokens) with a reference
  // added, or -1. Tokens are compared, so a hash collision never aliases.
  int32_t Acquire(uint64_t hash, uint64_t parent_hash, absl::Span<const int32_t> tokens);
  // Registers a full, computed block (which the caller references). No-op if
  // prefix caching is off or another block is registered under `hash`.
  void Register(int32_t block, uint64_t hash, uint64_t parent_hash, absl::Span<const int32_t> tokens);

  // The chain hash of a block of tokens that follows a block hashed `parent_hash`
  // (0 for the first block).
  static uint64_t ChainHash(uint64_t parent_hash, absl::Span<const int32_t> tokens);

 private:
  KvCache(const ModelConfig& config, const KvCacheOptions& options, int32_t num_blocks,
          std::unique_ptr<KvPages> pages);
  int64_t Offset(int32_t block, int layer) const {
    return (static_cast<int64_t>(block) * num_layers_ + layer) * 2 * block_size_ * kv_dim_;
  }
  void LruRemove(int32_t block);
  void LruPushBack(int32_t block);

  struct BlockInfo {
    int32_t refs = 0;
    bool registered = false;
    uint64_t hash = 0, parent_hash = 0;
    int32_t lru_prev = -1, lru_next = -1;  // in the list of cached unreferenced blocks
  };

  const int64_t block_size_;
  const int64_t kv_dim_;
  const int num_layers_;
  const int32_t num_blocks_;
  const bool prefix_caching_;
  std::unique_ptr<KvPages> pages_;
  float* const data_;  // pages_->data()
  std::vector<BlockInfo> info_;
  std::vector<int32_t> tokens_;        // [num_blocks, block_size]: tokens of registered blocks
  std::vector<int32_t> never_cached_;  // free blocks without an entry (a stack: reuse warm pages)
  int32_t lru_head_ = -1, lru_tail_ = -1;  // oldest, newest cached unreferenced block
  int32_t num_used_ = 0;
  int32_t num_cached_free_ = 0;
  absl::flat_hash_map<uint64_t, int32_t> by_hash_;
};

// One sequence's block table. Holds one reference on each of its blocks and
// releases them when destroyed (or on Truncate / Release).
class SequenceKv {
 public:
  explicit SequenceKv(KvCache* cache) : cache_(cache) {}
  ~SequenceKv() { Release(); }
  SequenceKv(const SequenceKv&) = delete;
  SequenceKv& operator=(const SequenceKv&) = delete;

  KvCache& cache() const { return *cache_; }
  // Positions whose keys and values are in the cache.
  int64_t length() const { return length_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }
  // Blocks that must be added to hold `length` positions.
  int64_t BlocksToReach(int64_t length) const;

  // Makes the table cover `length` positions. False, with nothing allocated,
  // when the cache has too few free blocks.
  bool Reserve(int64_t length);
  // Marks positions [length(), length) as computed (their K/V written).
  void Advance(int64_t length);
  // Drops positions from `length` on and the blocks no longer needed. A block
  // that keeps some positions but is shared or registered is first copied, so
  // that later writes never touch it. False if that copy found no free block
  // (the length is then rounded down to the block boundary).
  bool Truncate(int64_t length);
  // Releases every block; length() becomes 0.
  void Release();

  // Prefix cache. On an empty sequence: takes the registered blocks matching
  // the leading full blocks of `tokens`, at most `max_positions` positions;
  // returns the positions now covered (length()).
  int64_t AttachCachedPrefix(absl::Span<const int32_t> tokens, int64_t max_positions);
  // Registers every full computed block not registered yet. `tokens` are the
  // sequence's tokens, at least length() of them.
  void RegisterFullBlocks(absl::Span<const int32_t> tokens);

 private:
  KvCache* cache_;
  int64_t length_ = 0;
  std::vector<int32_t> blocks_;
  std::vector<uint64_t> chain_;  // chain hash of each leading full block seen by the prefix cache
};

}  // namespace moe

#endif  // MOE_ROUTER_KV_CACHE_H_
