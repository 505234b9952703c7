#include "router/dense_model.h"

#include "core/status_macros.h"

namespace moe {
namespace {

absl::StatusOr<WeightView> View(const TensorStore& store, const std::string& name,
                                std::vector<int64_t> shape) {
  ASSIGN_OR_RETURN(TensorView t, store.Get(name, shape));
  const int64_t rows = shape.size() == 2 ? shape[0] : 1;
  return WeightView{t.data, t.dtype(), rows, shape.back()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<DenseModel>> DenseModel::Load(const Checkpoint& checkpoint) {
  auto m = std::make_unique<DenseModel>();
  const ModelConfig& c = checkpoint.config();
  const TensorStore& s = checkpoint.store();
  m->config_ = c;
  const int64_t h = c.hidden_size;
  ASSIGN_OR_RETURN(m->embedding_, View(s, TensorNames::Embedding(), {c.vocab_size, h}));
  ASSIGN_OR_RETURN(m->final_norm_, View(s, TensorNames::FinalNorm(), {h}));
  if (c.tie_word_embeddings) {
    m->lm_head_ = m->embedding_;
  } else {
    ASSIGN_OR_RETURN(m->lm_head_, View(s, TensorNames::LmHead(), {c.vocab_size, h}));
  }
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    LayerWeights L;
    ASSIGN_OR_RETURN(L.input_norm, View(s, TensorNames::InputNorm(c, i), {h}));
    ASSIGN_OR_RETURN(L.post_attention_norm, View(s, TensorNames::PostAttentionNorm(c, i), {h}));
    ASSIGN_OR_RETURN(L.q, View(s, TensorNames::Q(c, i), {c.q_dim(), h}));
    ASSIGN_OR_RETURN(L.k, View(s, TensorNames::K(c, i), {c.kv_dim(), h}));
    ASSIGN_OR_RETURN(L.v, View(s, TensorNames::V(c, i), {c.kv_dim(), h}));
    ASSIGN_OR_RETURN(L.o, View(s, TensorNames::O(c, i), {h, c.q_dim()}));
    if (c.qk_norm) {
      ASSIGN_OR_RETURN(L.q_norm, View(s, TensorNames::QNorm(c, i), {c.head_dim}));
      ASSIGN_OR_RETURN(L.k_norm, View(s, TensorNames::KNorm(c, i), {c.head_dim}));
    }
    ASSIGN_OR_RETURN(L.gate, View(s, TensorNames::Gate(c, i), {c.num_experts, h}));
    m->layers_.push_back(L);
  }
  return m;
}

int64_t DenseModel::ActiveDenseBytes() const {
  int64_t total = final_norm_.nbytes() + lm_head_.nbytes();
  for (const LayerWeights& L : layers_) {
    total += L.input_norm.nbytes() + L.post_attention_norm.nbytes() + L.q.nbytes() + L.k.nbytes() +
             L.v.nbytes() + L.o.nbytes() + L.q_norm.nbytes() + L.k_norm.nbytes() + L.gate.nbytes();
  }
  return total;
}

}  // namespace moe
