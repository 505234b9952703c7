#include "proto/sampling_convert.h"

#include <algorithm>

namespace moe {

SamplingOptions FromProto(const moe::v1::SamplingParams& p) {
  SamplingOptions o;
  if (p.has_temperature()) o.temperature = p.temperature();
  if (p.has_top_k()) o.top_k = p.top_k();
  if (p.has_top_p()) o.top_p = p.top_p();
  if (p.has_min_p()) o.min_p = p.min_p();
  if (p.has_typical_p()) o.typical_p = p.typical_p();
  if (p.has_repetition_penalty()) o.repetition_penalty = p.repetition_penalty();
  if (p.has_presence_penalty()) o.presence_penalty = p.presence_penalty();
  if (p.has_frequency_penalty()) o.frequency_penalty = p.frequency_penalty();
  for (const auto& [id, bias] : p.logit_bias()) o.logit_bias.emplace_back(static_cast<int64_t>(id), bias);
  std::sort(o.logit_bias.begin(), o.logit_bias.end());  // map order is unspecified
  if (p.has_seed()) o.seed = p.seed();
  if (p.has_min_tokens()) o.min_tokens = p.min_tokens();
  if (p.has_ignore_eos()) o.ignore_eos = p.ignore_eos();
  if (p.has_logprobs()) o.top_logprobs = p.logprobs();
  return o;
}

}  // namespace moe
