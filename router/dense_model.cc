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

// The three projections of a SwiGLU block with inner size `ffn`.
template <typename NameOf>
absl::StatusOr<FfnWeights> Ffn(const TensorStore& store, const ModelConfig& c, int64_t ffn, NameOf name_of) {
  FfnWeights w;
  ASSIGN_OR_RETURN(w.gate, View(store, name_of(0), {ffn, c.hidden_size}));
  ASSIGN_OR_RETURN(w.down, View(store, name_of(1), {c.hidden_size, ffn}));
  ASSIGN_OR_RETURN(w.up, View(store, name_of(2), {ffn, c.hidden_size}));
  return w;
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
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(L.q_bias, View(s, TensorNames::QBias(c, i), {c.q_dim()}));
      ASSIGN_OR_RETURN(L.k_bias, View(s, TensorNames::KBias(c, i), {c.kv_dim()}));
      ASSIGN_OR_RETURN(L.v_bias, View(s, TensorNames::VBias(c, i), {c.kv_dim()}));
    }
    if (c.o_bias) {
      ASSIGN_OR_RETURN(L.o_bias, View(s, TensorNames::OBias(c, i), {h}));
    }
    if (c.qk_norm) {
      ASSIGN_OR_RETURN(L.q_norm, View(s, TensorNames::QNorm(c, i), {c.qk_norm_per_head ? c.head_dim : c.q_dim()}));
      ASSIGN_OR_RETURN(L.k_norm, View(s, TensorNames::KNorm(c, i), {c.qk_norm_per_head ? c.head_dim : c.kv_dim()}));
    }
    L.moe = c.IsMoeLayer(i);
    if (!L.moe) {
      ASSIGN_OR_RETURN(L.mlp, Ffn(s, c, c.mlp_intermediate_size, [&](int which) { return TensorNames::DenseMlp(c, i, which); }));
      m->layers_.push_back(L);
      continue;
    }
    ASSIGN_OR_RETURN(L.gate, View(s, TensorNames::Gate(c, i), {c.num_experts, h}));
    if (c.shared_expert_intermediate_size > 0) {
      ASSIGN_OR_RETURN(L.shared_expert, Ffn(s, c, c.shared_expert_intermediate_size,
                                            [&](int which) { return TensorNames::SharedExpert(c, i, which); }));
      if (c.shared_expert_gate) {
        ASSIGN_OR_RETURN(L.shared_expert_gate, View(s, TensorNames::SharedExpertGate(c, i), {1, h}));
      }
    }
    m->layers_.push_back(L);
  }
  return m;
}

int64_t DenseModel::ActiveDenseBytes() const {
  int64_t total = final_norm_.nbytes() + lm_head_.nbytes();
  for (const LayerWeights& L : layers_) {
    total += L.input_norm.nbytes() + L.post_attention_norm.nbytes() + L.q.nbytes() + L.k.nbytes() +
             L.v.nbytes() + L.o.nbytes() + L.q_bias.nbytes() + L.k_bias.nbytes() + L.v_bias.nbytes() +
             L.o_bias.nbytes() + L.q_norm.nbytes() + L.k_norm.nbytes() + L.gate.nbytes() +
             L.shared_expert.nbytes() + L.shared_expert_gate.nbytes() + L.mlp.nbytes();
  }
  return total;
}

}  // namespace moe
