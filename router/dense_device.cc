#include "router/dense_device.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace moe {

absl::Status CheckBatchInvariants(const ModelConfig& c, absl::Span<const SequenceInput> batch, int64_t* num_tokens) {
  // The engine validated every request; a failure here is a bug, not bad input.
  int64_t T = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SequenceInput& in = batch[s];
    for (int32_t id : in.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return absl::InternalError(absl::StrCat("invariant broken: sequence ", s, " holds token id ", id,
                                                " outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
    const int64_t end = in.kv->length() + static_cast<int64_t>(in.tokens.size());
    if (end > c.max_position_embeddings) {
      return absl::InternalError(absl::StrCat("invariant broken: sequence ", s, " reaches position ", end,
                                              ", past the context of ", c.max_position_embeddings, " tokens"));
    }
    if (in.kv->length() % in.kv->cache().block_size() != 0 &&
        !in.kv->cache().Writable(in.kv->blocks()[in.kv->length() / in.kv->cache().block_size()])) {
      return absl::InternalError(
          absl::StrCat("invariant broken: sequence ", s, " of the batch would write into a shared KV block"));
    }
    T += static_cast<int64_t>(in.tokens.size());
  }
  *num_tokens = T;
  return absl::OkStatus();
}

absl::Status ReserveBatchKv(absl::Span<const SequenceInput> batch) {
  for (size_t s = 0; s < batch.size(); ++s) {
    SequenceKv* kv = batch[s].kv;
    if (!kv->Reserve(kv->length() + static_cast<int64_t>(batch[s].tokens.size()))) {
      const int64_t need = kv->BlocksToReach(kv->length() + static_cast<int64_t>(batch[s].tokens.size()));
      const int32_t free = kv->cache().num_free_blocks();
      for (size_t r = 0; r <= s; ++r) batch[r].kv->Truncate(batch[r].kv->length());
      return absl::ResourceExhaustedError(absl::StrCat("KV cache: sequence ", s, " of the batch needs ", need,
                                                       " more blocks, ", free, " are free"));
    }
  }
  return absl::OkStatus();
}

std::vector<int64_t> LogitRows(absl::Span<const SequenceInput> batch) {
  std::vector<int64_t> rows;
  int64_t t = 0;
  for (const SequenceInput& in : batch) {
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    if (in.no_logits) {
      // none
    } else if (in.all_logits) {
      for (int64_t i = 0; i < n; ++i) rows.push_back(t + i);
    } else if (n > 0) {
      rows.push_back(t + n - 1);
    }
    t += n;
  }
  return rows;
}

std::vector<double> RopeInverseFrequencies(const ModelConfig& c) {
  std::vector<double> inv_freq;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    inv_freq.push_back(1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / c.head_dim));
  }
  return inv_freq;
}

void RopeRow(const std::vector<double>& inv_freq, int64_t pos, float* cos, float* sin) {
  for (size_t j = 0; j < inv_freq.size(); ++j) {
    const double angle = static_cast<double>(pos) * inv_freq[j];
    cos[j] = static_cast<float>(std::cos(angle));
    sin[j] = static_cast<float>(std::sin(angle));
  }
}

}  // namespace moe
