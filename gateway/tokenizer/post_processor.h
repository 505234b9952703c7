// Post-processors of tokenizer.json ("post_processor"): TemplateProcessing
// (single-sequence template), ByteLevel (no effect on ids), BertProcessing,
// RobertaProcessing and Sequence. They add the special tokens around an
// encoded sequence when the caller asks for them.
//
// Thread-safety: immutable after construction.
#ifndef MOE_GATEWAY_TOKENIZER_POST_PROCESSOR_H_
#define MOE_GATEWAY_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace moe::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of one encoded sequence; with `add_special_tokens`
  // false, processors leave the ids as they are.
  virtual void Process(bool add_special_tokens, std::vector<int32_t>* ids) const = 0;
};

// The post-processor described by `j`; nullptr for JSON null.
absl::StatusOr<std::unique_ptr<PostProcessor>> MakePostProcessor(const nlohmann::json& j, absl::string_view where);

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_POST_PROCESSOR_H_
