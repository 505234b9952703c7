#include "experts/nccl_bootstrap.h"

#include "absl/strings/str_cat.h"

namespace moe::nccl {

absl::Status ValidateJoinRequest(const JoinRequest& r) {
  if (static_cast<int64_t>(r.unique_id.size()) != kUniqueIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("unique_id: ", r.unique_id.size(), " bytes, an NCCL unique id has ", kUniqueIdBytes));
  }
  if (r.nranks < 2 || r.nranks > kMaxRanks) {
    return absl::InvalidArgumentError(absl::StrCat("nranks: ", r.nranks, " is outside [2, ", kMaxRanks, "]"));
  }
  if (r.rank < 1 || r.rank >= r.nranks) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank: ", r.rank, " is outside [1, ", r.nranks - 1, "] (rank 0 is the router)"));
  }
  if (r.timeout_ms < 1 || r.timeout_ms > kMaxJoinTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout_ms: ", r.timeout_ms, " is outside [1, ", kMaxJoinTimeoutMs, "]"));
  }
  if (r.generation < 1) return absl::InvalidArgumentError("generation: must be >= 1");
  return absl::OkStatus();
}

}  // namespace moe::nccl
