// Public sampling parameters (moe.v1.SamplingParams) -> SamplingOptions, with
// the OpenAI/vLLM defaults for unset fields. Used by the gateway to validate
// and by the router to apply, so both read a request the same way.
#ifndef MOE_PROTO_SAMPLING_CONVERT_H_
#define MOE_PROTO_SAMPLING_CONVERT_H_

#include "core/sampling_options.h"
#include "moe/v1/inference.pb.h"

namespace moe {

SamplingOptions FromProto(const moe::v1::SamplingParams& params);

}  // namespace moe

#endif  // MOE_PROTO_SAMPLING_CONVERT_H_
