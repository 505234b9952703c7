#include "experts/expert_shard.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {
namespace {

absl::StatusOr<WeightView> Matrix(const TensorStore& store, const std::string& name,
                                  int64_t rows, int64_t cols) {
  const int64_t shape[2] = {rows, cols};
  ASSIGN_OR_RETURN(TensorView t, store.Get(name, shape));
  return WeightView{t.data, t.dtype(), rows, cols};
}

volatile uint8_t g_prefault_sink;  // keeps the prefault reads alive

// Pages in the bytes of one tensor: asks the kernel to read them ahead, then
// touches one byte per page so that they are mapped into this process now
// rather than on the first request. Only the tensor's own pages are touched.
void Prefault(const WeightView& w) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.data);
  const uintptr_t end = begin + static_cast<uintptr_t>(w.nbytes());
  if (end <= begin) return;
  const uintptr_t first_page = begin & ~(page - 1);
  // Advice only: failure (e.g. anonymous memory in tests) changes nothing.
  (void)madvise(reinterpret_cast<void*>(first_page), end - first_page, MADV_WILLNEED);
  uint8_t sum = 0;
  for (uintptr_t p = begin; p < end; p = (p | (page - 1)) + 1) sum ^= *reinterpret_cast<const volatile uint8_t*>(p);
  g_prefault_sink = sum;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExpertShard>> ExpertShard::Load(const Checkpoint& checkpoint,
                                                               std::vector<ExpertKey> keys) {
  const ModelConfig& c = checkpoint.config();
  if (keys.empty()) {
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      if (!c.IsMoeLayer(l)) continue;
      for (int e = 0; e < c.num_experts; ++e) keys.push_back({l, e});
    }
  }
  auto shard = std::unique_ptr<ExpertShard>(new ExpertShard(c));
  for (const ExpertKey& k : keys) {
    if (k.layer < 0 || k.layer >= c.num_hidden_layers || k.expert < 0 || k.expert >= c.num_experts) {
      return absl::InvalidArgumentError(absl::StrCat("expert (layer ", k.layer, ", expert ", k.expert,
                                                     ") is outside the model (", c.num_hidden_layers,
                                                     " layers, ", c.num_experts, " experts)"));
    }
    if (!c.IsMoeLayer(k.layer)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", k.layer, " is a dense MLP layer: it has no experts (asked for expert ", k.expert, ")"));
    }
    Weights w;
    const int64_t h = c.hidden_size, f = c.intermediate_size;
    ASSIGN_OR_RETURN(w.gate, Matrix(checkpoint.store(), TensorNames::Expert(c, k.layer, k.expert, 0), f, h));
    ASSIGN_OR_RETURN(w.down, Matrix(checkpoint.store(), TensorNames::Expert(c, k.layer, k.expert, 1), h, f));
    ASSIGN_OR_RETURN(w.up, Matrix(checkpoint.store(), TensorNames::Expert(c, k.layer, k.expert, 2), f, h));
    shard->experts_[k] = w;
  }
  for (const auto& [k, w] : shard->experts_) {
    Prefault(w.gate);
    Prefault(w.down);
    Prefault(w.up);
  }
  return shard;
}

std::vector<ExpertKey> ExpertShard::keys() const {
  std::vector<ExpertKey> out;
  for (const auto& [k, w] : experts_) out.push_back(k);
  return out;
}

int64_t ExpertShard::weight_bytes() const {
  int64_t total = 0;
  for (const auto& [k, w] : experts_) total += w.nbytes();
  return total;
}

DType ExpertShard::weight_dtype() const {
  return experts_.empty() ? DType::kF32 : experts_.begin()->second.gate.dtype;
}

absl::StatusOr<const FfnWeights*> ExpertShard::Find(int layer, int expert) const {
  auto it = experts_.find({layer, expert});
  if (it == experts_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this shard does not hold expert ", expert, " of layer ", layer));
  }
  return &it->second;
}

absl::Status ExpertShard::Run(int layer, int expert, const float* x, int64_t m, float* out,
                              ThreadPool* pool, Scratch* scratch) const {
  ASSIGN_OR_RETURN(const FfnWeights* w, Find(layer, expert));
  SwiGluFfn(*w, x, m, out, pool, scratch);
  return absl::OkStatus();
}

}  // namespace moe
