#include "router/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/attention.h"
#include "core/status_macros.h"

namespace moe {

ForwardPass::ForwardPass(const DenseModel* model, ExpertBackend* experts, ThreadPool* pool)
    : model_(model), config_(model->config()), experts_(experts), pool_(pool) {
  inv_freq_ = RopeInverseFrequencies(config_);
  auto to_f32 = [](const WeightView& w) {
    std::vector<float> out(w.data == nullptr ? 0 : w.cols);
    if (!out.empty()) ConvertRow(w, 0, out.data());
    return out;
  };
  for (int l = 0; l < config_.num_hidden_layers; ++l) {
    const LayerWeights& L = model_->layer(l);
    biases_.push_back({to_f32(L.q_bias), to_f32(L.k_bias), to_f32(L.v_bias), to_f32(L.o_bias)});
  }
  const int64_t counters = static_cast<int64_t>(config_.num_hidden_layers) * config_.num_experts;
  expert_tokens_ = std::make_unique<std::atomic<uint64_t>[]>(counters);
  for (int64_t i = 0; i < counters; ++i) expert_tokens_[i].store(0, std::memory_order_relaxed);
}

std::vector<uint64_t> ForwardPass::ExpertTokenCounts() const {
  std::vector<uint64_t> out(static_cast<size_t>(config_.num_hidden_layers) * config_.num_experts);
  for (size_t i = 0; i < out.size(); ++i) out[i] = expert_tokens_[i].load(std::memory_order_relaxed);
  return out;
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

// rows[t * n + i] += bias[i] for T rows of n = bias.size(); nothing when empty.
void AddBias(const std::vector<float>& bias, int64_t T, float* rows) {
  const int64_t n = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < n; ++i) rows[t * n + i] += bias[i];
  }
}

void Clamp(float* x, int64_t n, float limit) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], -limit), limit);
}

}  // namespace

void ForwardPass::QkvProjections(int layer, int64_t T) {
  const ModelConfig& c = config_;
  const LayerWeights& L = model_->layer(layer);
  const int64_t D = c.hidden_size;
  const MatMulTask qkv[3] = {{h_.data(), T, D, L.q, q_.data(), c.q_dim()},
                             {h_.data(), T, D, L.k, k_.data(), c.kv_dim()},
                             {h_.data(), T, D, L.v, v_.data(), c.kv_dim()}};
  MatMuls(qkv, 3, pool_);
  AddBias(biases_[layer].q, T, q_.data());
  AddBias(biases_[layer].k, T, k_.data());
  AddBias(biases_[layer].v, T, v_.data());
  if (c.qk_norm) {
    if (c.qk_norm_per_head) {  // Qwen3-MoE: each head on its own
      RmsNorm(q_.data(), T * c.num_attention_heads, c.head_dim, L.q_norm, c.rms_norm_eps, q_.data());
      RmsNorm(k_.data(), T * c.num_key_value_heads, c.head_dim, L.k_norm, c.rms_norm_eps, k_.data());
    } else {  // OLMoE: the whole projection, before the view into heads
      RmsNorm(q_.data(), T, c.q_dim(), L.q_norm, c.rms_norm_eps, q_.data());
      RmsNorm(k_.data(), T, c.kv_dim(), L.k_norm, c.rms_norm_eps, k_.data());
    }
  }
  if (c.clip_qkv) {
    const float limit = static_cast<float>(*c.clip_qkv);
    Clamp(q_.data(), T * c.q_dim(), limit);
    Clamp(k_.data(), T * c.kv_dim(), limit);
    Clamp(v_.data(), T * c.kv_dim(), limit);
  }
}

absl::Status ForwardPass::Ffn(int layer, int64_t T) {
  const ModelConfig& c = config_;
  const LayerWeights& L = model_->layer(layer);
  const int64_t D = c.hidden_size;
  if (!L.moe) {  // a dense MLP layer: computed here, nothing dispatched
    shared_out_.resize(T * D);
    SwiGluFfn(L.mlp, h_.data(), T, shared_out_.data(), pool_, &ffn_scratch_);
    for (int64_t i = 0; i < T * D; ++i) x_[i] += shared_out_[i];
    return absl::OkStatus();
  }
  return MoE(layer, T);
}

absl::Status ForwardPass::Forward(absl::Span<const SequenceInput> batch, std::vector<float>* logits) {
  int64_t T = 0;
  RETURN_IF_ERROR(CheckBatchInvariants(config_, batch, &T));
  logits->clear();
  if (T == 0) return absl::OkStatus();
  RETURN_IF_ERROR(ReserveBatchKv(batch));
  Embed(batch, T);
  for (int layer = 0; layer < config_.num_hidden_layers; ++layer) {
    AttentionBlock(layer, batch, T);
    if (absl::Status st = FfnBlock(layer, T); !st.ok()) {
      for (const SequenceInput& in : batch) in.kv->Truncate(in.kv->length());  // frees the reserved blocks
      return st;
    }
  }
  for (const SequenceInput& in : batch) in.kv->Advance(in.kv->length() + static_cast<int64_t>(in.tokens.size()));
  LmHead(batch, logits);
  return absl::OkStatus();
}

void ForwardPass::Embed(absl::Span<const SequenceInput> batch, int64_t T) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size, half = c.head_dim / 2;
  token_seq_.resize(T);
  token_pos_.resize(T);
  x_.resize(T * D);
  rope_cos_.resize(T * half);
  rope_sin_.resize(T * half);
  int64_t t = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& in = batch[s];
    for (size_t i = 0; i < in.tokens.size(); ++i, ++t) {
      token_seq_[t] = static_cast<int32_t>(s);
      token_pos_[t] = in.kv->length() + static_cast<int64_t>(i);
      ConvertRow(model_->embedding(), in.tokens[i], &x_[t * D]);
      RopeRow(inv_freq_, token_pos_[t], &rope_cos_[t * half], &rope_sin_[t * half]);
    }
  }
  h_.resize(T * D);
  q_.resize(T * c.q_dim());
  k_.resize(T * c.kv_dim());
  v_.resize(T * c.kv_dim());
  attn_.resize(T * c.q_dim());
  o_.resize(T * D);
}

void ForwardPass::AttentionBlock(int layer, absl::Span<const SequenceInput> batch, int64_t T) {
  const ModelConfig& c = config_;
  const LayerWeights& L = model_->layer(layer);
  const int64_t D = c.hidden_size, hd = c.head_dim, half = hd / 2;
  RmsNorm(x_.data(), T, D, L.input_norm, c.rms_norm_eps, h_.data());
  QkvProjections(layer, T);
  // RoPE, then the new keys and values into the sequences' KV blocks.
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = &rope_cos_[t * half];
    const float* sn = &rope_sin_[t * half];
    for (int64_t hh = 0; hh < c.num_attention_heads; ++hh) ApplyRope(&q_[t * c.q_dim() + hh * hd], cs, sn, half);
    for (int64_t hh = 0; hh < c.num_key_value_heads; ++hh) ApplyRope(&k_[t * c.kv_dim() + hh * hd], cs, sn, half);
    SequenceKv* kv = batch[token_seq_[t]].kv;
    const int64_t bs = kv->cache().block_size();
    const int32_t block = kv->blocks()[token_pos_[t] / bs];
    const int64_t slot = token_pos_[t] % bs;
    std::memcpy(kv->cache().keys(block, layer) + slot * c.kv_dim(), &k_[t * c.kv_dim()], c.kv_dim() * sizeof(float));
    std::memcpy(kv->cache().values(block, layer) + slot * c.kv_dim(), &v_[t * c.kv_dim()],
                c.kv_dim() * sizeof(float));
  }
  Attention(layer, batch);
  MatMul(attn_.data(), T, c.q_dim(), L.o, o_.data(), D, pool_);
  AddBias(biases_[layer].o, T, o_.data());
  for (int64_t i = 0; i < T * D; ++i) x_[i] += o_[i];
}

absl::Status ForwardPass::FfnBlock(int layer, int64_t T) {
  const ModelConfig& c = config_;
  RmsNorm(x_.data(), T, c.hidden_size, model_->layer(layer).post_attention_norm, c.rms_norm_eps, h_.data());
  return Ffn(layer, T);
}

void ForwardPass::LmHead(absl::Span<const SequenceInput> batch, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  const int64_t D = c.hidden_size;
  const std::vector<int64_t> rows = LogitRows(batch);
  const int64_t R = static_cast<int64_t>(rows.size());
  for (int64_t r = 0; r < R; ++r) std::memcpy(&h_[r * D], &x_[rows[r] * D], D * sizeof(float));
  RmsNorm(h_.data(), R, D, model_->final_norm(), c.rms_norm_eps, h_.data());
  logits->resize(R * c.vocab_size);
  MatMul(h_.data(), R, D, model_->lm_head(), logits->data(), c.vocab_size, pool_);
}

void ForwardPass::Attention(int layer, absl::Span<const SequenceInput> batch) {
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim, KV = c.num_key_value_heads;
  const int64_t group = c.num_attention_heads / KV;
  const int64_t T = static_cast<int64_t>(token_seq_.size());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  // Blocks of up to ~16 queries per KV head: consecutive tokens of one
  // sequence (a prefill's) share the keys and values of their common
  // positions, and a KV head's query heads share all of them.
  const int64_t tokens_per_block = std::max<int64_t>(1, 16 / group);
  attn_blocks_.clear();
  for (int64_t t = 0; t < T;) {
    int64_t e = t + 1;
    while (e < T && e - t < tokens_per_block && token_seq_[e] == token_seq_[t]) ++e;
    attn_blocks_.emplace_back(t, e);
    t = e;
  }
  const int64_t num_blocks = static_cast<int64_t>(attn_blocks_.size());
  const int64_t width = group * hd;  // one token's queries of one KV head
  // One (token block, KV head) per item, the last blocks (the longest
  // causal spans) first so that short ones fill the end of the loop.
  auto body = [&](int64_t begin, int64_t end) {
    std::vector<float> scores, qs, outs;
    for (int64_t item = begin; item < end; ++item) {
      const auto [t0, t1] = attn_blocks_[num_blocks - 1 - item / KV];
      const int64_t kvh = item % KV, tokens = t1 - t0;
      const SequenceKv* kv = batch[token_seq_[t0]].kv;
      const int64_t n = token_pos_[t0] + 1;
      qs.resize(tokens * width);
      outs.resize(tokens * width);
      scores.resize(tokens * group * (n + tokens - 1));
      for (int64_t b = 0; b < tokens; ++b) {
        std::memcpy(&qs[b * width], &q_[(t0 + b) * c.q_dim() + kvh * width], width * sizeof(float));
      }
      PagedAttention(qs.data(), tokens, group, hd, n, kv->cache().HeadView(layer, kvh, hd, kv->blocks().data()), scale,
                     scores.data(), outs.data());
      for (int64_t b = 0; b < tokens; ++b) {
        std::memcpy(&attn_[(t0 + b) * c.q_dim() + kvh * width], &outs[b * width], width * sizeof(float));
      }
    }
  };
  const int64_t items = num_blocks * KV;
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
  {
    std::vector<uint64_t> counts(E, 0);
    for (int64_t i = 0; i < T * K; ++i) ++counts[gate_e_[i]];
    std::atomic<uint64_t>* row = &expert_tokens_[static_cast<int64_t>(layer) * E];
    for (int64_t e = 0; e < E; ++e) {
      if (counts[e] != 0) row[e].fetch_add(counts[e], std::memory_order_relaxed);
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
  // The shared expert (Qwen2-MoE) runs here, on the router, for every token.
  const LayerWeights& L = model_->layer(layer);
  const bool shared = c.shared_expert_intermediate_size > 0;
  if (shared) {
    shared_out_.resize(T * D);
    SwiGluFfn(L.shared_expert, h_.data(), T, shared_out_.data(), pool_, &ffn_scratch_);
    if (c.shared_expert_gate) {
      shared_gate_.resize(T);
      MatMul(h_.data(), T, D, L.shared_expert_gate, shared_gate_.data(), 1, pool_);
      for (int64_t t = 0; t < T; ++t) shared_gate_[t] = 1.0f / (1.0f + std::exp(-shared_gate_[t]));
    }
  }
  // Combine in top-k rank order, add the gated shared expert, then the residual.
  for (int64_t t = 0; t < T; ++t) {
    float* x = &x_[t * D];
    const float s = c.shared_expert_gate ? shared_gate_[t] : 1.0f;
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < K; ++j) acc += gate_w_[t * K + j] * expert_out_[(t * K + j) * D + d];
      if (shared) acc += s * shared_out_[t * D + d];
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
