#include "router/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace moe {

SequenceKv::SequenceKv(const ModelConfig& config)
    : kv_dim_(config.kv_dim()),
      k_(config.num_hidden_layers),
      v_(config.num_hidden_layers) {}

void SequenceKv::Truncate(int64_t length) {
  length_ = std::min(length_, std::max<int64_t>(0, length));
  for (auto& k : k_) k.resize(length_ * kv_dim_);
  for (auto& v : v_) v.resize(length_ * kv_dim_);
}

ForwardPass::ForwardPass(const DenseModel* model, ExpertBackend* experts, ThreadPool* pool)
    : model_(model), config_(model->config()), experts_(experts), pool_(pool) {
  const int64_t hd = config_.head_dim;
  for (int64_t i = 0; i < hd / 2; ++i) {
    inv_freq_.push_back(1.0 / std::pow(config_.rope_theta, static_cast<double>(2 * i) / hd));
  }
}

namespace {

// Rotate-half RoPE on one head vector.
void ApplyRope(float* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = x[i], x2 = x[i + half];
    x[i] = x1 * cos[i] - x2 * sin[i];
    x[i + half] = x2 * cos[i] + x1 * sin[i];
  }
}

}  // namespace

absl::Status ForwardPass::Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, hd = c.head_dim, half = hd / 2;
  int64_t T = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& in = batch[s];
    for (int32_t id : in.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
    const int64_t end = in.kv->length() + static_cast<int64_t>(in.tokens.size());
    if (c.max_position_embeddings > 0 && end > c.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat("sequence length ", end, " exceeds the context of ",
                                                     c.max_position_embeddings, " tokens"));
    }
    T += static_cast<int64_t>(in.tokens.size());
  }
  logits->clear();
  if (T == 0) return absl::OkStatus();

  token_seq_.resize(T);
  token_pos_.resize(T);
  x_.resize(T * D);
  rope_cos_.resize(T * half);
  rope_sin_.resize(T * half);
  {
    int64_t t = 0;
    for (size_t s = 0; s < batch.size(); ++s) {
      const SequenceInput& in = batch[s];
      for (size_t i = 0; i < in.tokens.size(); ++i, ++t) {
        token_seq_[t] = static_cast<int32_t>(s);
        token_pos_[t] = in.kv->length() + static_cast<int64_t>(i);
        ConvertRow(model_->embedding(), in.tokens[i], &x_[t * D]);
        for (int64_t j = 0; j < half; ++j) {
          const double angle = static_cast<double>(token_pos_[t]) * inv_freq_[j];
          rope_cos_[t * half + j] = static_cast<float>(std::cos(angle));
          rope_sin_[t * half + j] = static_cast<float>(std::sin(angle));
        }
      }
    }
    for (const SequenceInput& in : batch) {
      const int64_t new_len = in.kv->length() + static_cast<int64_t>(in.tokens.size());
      for (auto& k : in.kv->k_) k.resize(new_len * in.kv->kv_dim_);
      for (auto& v : in.kv->v_) v.resize(new_len * in.kv->kv_dim_);
    }
  }

  h_.resize(T * D);
  q_.resize(T * c.q_dim());
  k_.resize(T * c.kv_dim());
  v_.resize(T * c.kv_dim());
  attn_.resize(T * c.q_dim());
  o_.resize(T * D);
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    const LayerWeights& L = model_->layer(layer);
    RmsNorm(x_.data(), T, D, L.input_norm, c.rms_norm_eps, h_.data());
    MatMul(h_.data(), T, D, L.q, q_.data(), c.q_dim(), pool_);
    MatMul(h_.data(), T, D, L.k, k_.data(), c.kv_dim(), pool_);
    MatMul(h_.data(), T, D, L.v, v_.data(), c.kv_dim(), pool_);
    if (c.qk_norm) {
      RmsNorm(q_.data(), T * c.num_attention_heads, hd, L.q_norm, c.rms_norm_eps, q_.data());
      RmsNorm(k_.data(), T * c.num_key_value_heads, hd, L.k_norm, c.rms_norm_eps, k_.data());
    }
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = &rope_cos_[t * half];
      const float* sn = &rope_sin_[t * half];
      for (int64_t hh = 0; hh < c.num_attention_heads; ++hh) ApplyRope(&q_[t * c.q_dim() + hh * hd], cs, sn, half);
      for (int64_t hh = 0; hh < c.num_key_value_heads; ++hh) ApplyRope(&k_[t * c.kv_dim() + hh * hd], cs, sn, half);
      SequenceKv* kv = batch[token_seq_[t]].kv;
      std::memcpy(&kv->k_[layer][token_pos_[t] * c.kv_dim()], &k_[t * c.kv_dim()], c.kv_dim() * sizeof(float));
      std::memcpy(&kv->v_[layer][token_pos_[t] * c.kv_dim()], &v_[t * c.kv_dim()], c.kv_dim() * sizeof(float));
    }
    Attention(layer, batch);
    MatMul(attn_.data(), T, c.q_dim(), L.o, o_.data(), D, pool_);
    for (int64_t i = 0; i < T * D; ++i) x_[i] += o_[i];
    RmsNorm(x_.data(), T, D, L.post_attention_norm, c.rms_norm_eps, h_.data());
    RETURN_IF_ERROR(MoE(layer, T));
  }
  for (const SequenceInput& in : batch) in.kv->length_ += static_cast<int64_t>(in.tokens.size());

  // Final norm and lm_head on the rows that need logits.
  std::vector<int64_t> rows;
  {
    int64_t t = 0;
    for (const SequenceInput& in : batch) {
      const int64_t n = static_cast<int64_t>(in.tokens.size());
      if (in.all_logits) {
        for (int64_t i = 0; i < n; ++i) rows.push_back(t + i);
      } else if (n > 0) {
        rows.push_back(t + n - 1);
      }
      t += n;
    }
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  for (int64_t r = 0; r < R; ++r) std::memcpy(&h_[r * D], &x_[rows[r] * D], D * sizeof(float));
  RmsNorm(h_.data(), R, D, model_->final_norm(), c.rms_norm_eps, h_.data());
  logits->resize(R * c.vocab_size);
  MatMul(h_.data(), R, D, model_->lm_head(), logits->data(), c.vocab_size, pool_);
  return absl::OkStatus();
}

void ForwardPass::Attention(int layer, absl::Span<const SequenceInput> batch) {
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim, H = c.num_attention_heads;
  const int64_t group = H / c.num_key_value_heads;
  const int64_t T = static_cast<int64_t>(token_seq_.size());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  auto body = [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / H, head = item % H, kvh = head / group;
      const SequenceKv* kv = batch[token_seq_[t]].kv;
      const int64_t n = token_pos_[t] + 1;  // causal: positions 0..pos
      const float* q = &q_[t * c.q_dim() + head * hd];
      const float* keys = kv->k_[layer].data();
      const float* vals = kv->v_[layer].data();
      scores.resize(n);
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        scores[j] = Dot(q, keys + j * c.kv_dim() + kvh * hd, hd) * scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      float* out = &attn_[t * c.q_dim() + head * hd];
      std::fill(out, out + hd, 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float p = scores[j];
        const float* v = vals + j * c.kv_dim() + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
      }
      const float inv = 1.0f / sum;
      for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
    }
  };
  const int64_t items = T * H;
  if (pool_ != nullptr) {
    pool_->ParallelFor(items, pool_->ChunkFor(items), body);
  } else {
    body(0, items);
  }
}

absl::Status ForwardPass::MoE(int layer, int64_t T) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, E = c.num_experts, K = c.num_experts_per_tok;
  gate_logits_.resize(T * E);
  MatMul(h_.data(), T, D, model_->layer(layer).gate, gate_logits_.data(), E, pool_);
  gate_e_.resize(T * K);
  gate_w_.resize(T * K);
  std::vector<double> probs(E);
  std::vector<int32_t> order(E);
  for (int64_t t = 0; t < T; ++t) {
    const float* g = &gate_logits_[t * E];
    const double mx = *std::max_element(g, g + E);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += probs[e] = std::exp(static_cast<double>(g[e]) - mx);
    for (int64_t e = 0; e < E; ++e) probs[e] /= sum;
    for (int64_t e = 0; e < E; ++e) order[e] = static_cast<int32_t>(e);
    // Highest probability first; ties go to the lower expert id.
    std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
      return probs[a] != probs[b] ? probs[a] > probs[b] : a < b;
    });
    double top_sum = 0;
    for (int64_t j = 0; j < K; ++j) top_sum += probs[order[j]];
    for (int64_t j = 0; j < K; ++j) {
      gate_e_[t * K + j] = order[j];
      const double w = c.norm_topk_prob ? probs[order[j]] / top_sum : probs[order[j]];
      gate_w_[t * K + j] = static_cast<float>(w);
    }
  }
  expert_out_.resize(T * K * D);
  ExpertBatch eb;
  eb.layer = layer;
  eb.num_tokens = T;
  eb.top_k = static_cast<int>(K);
  eb.hidden = D;
  eb.hidden_states = h_.data();
  eb.experts = gate_e_.data();
  eb.weights = gate_w_.data();
  if (pool_ != nullptr && experts_->ComputesElsewhere()) pool_->Quiesce();
  RETURN_IF_ERROR(experts_->Compute(eb, expert_out_.data()));
  // Combine in top-k rank order, then the residual.
  for (int64_t t = 0; t < T; ++t) {
    float* x = &x_[t * D];
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < K; ++j) acc += gate_w_[t * K + j] * expert_out_[(t * K + j) * D + d];
      x[d] += acc;
    }
  }
  return absl::OkStatus();
}

std::vector<double> LogSoftmax(absl::Span<const float> logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

}  // namespace moe
