// The NCCL transport's bootstrap, the part that needs no GPU: the router
// (rank 0) makes a unique id (ncclGetUniqueId: the address of its bootstrap
// socket, 128 bytes) and hands it, with each worker's rank, to every worker
// over gRPC (ExpertWorker.JoinCommunicator); every process then joins one
// communicator, each with a deadline, so that a worker that never joins fails
// start-up with its name instead of hanging everyone.
#ifndef MOE_EXPERTS_NCCL_BOOTSTRAP_H_
#define MOE_EXPERTS_NCCL_BOOTSTRAP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moe::nccl {

inline constexpr int64_t kUniqueIdBytes = 128;  // sizeof(ncclUniqueId)
inline constexpr int kMaxRanks = 257;           // the router and up to 256 workers
inline constexpr int64_t kMaxJoinTimeoutMs = 600000;

// What a worker is asked to join.
struct JoinRequest {
  std::string unique_id;  // kUniqueIdBytes bytes
  int rank = 0;           // 1 .. nranks - 1 (the router is 0)
  int nranks = 0;
  uint64_t generation = 0;  // >= 1; a rebuilt communicator counts up
  int64_t timeout_ms = 0;   // join within this or fail
};

// INVALID_ARGUMENT naming the field: id size, rank and nranks ranges, timeout
// in [1, kMaxJoinTimeoutMs], generation >= 1.
absl::Status ValidateJoinRequest(const JoinRequest& r);

// A fresh unique id from NCCL (loaded at run time: libnccl.so.2).
// FAILED_PRECONDITION when NCCL cannot be loaded or this build has no CUDA.
absl::StatusOr<std::string> MakeUniqueId();

// A worker's side of the join (the real one: ncclCommInitRankConfig on the
// worker's GPU, non-blocking, within the timeout). Tests use fakes.
class Joiner {
 public:
  virtual ~Joiner() = default;
  // Blocks until joined or failed; returns the device description.
  virtual absl::StatusOr<std::string> Join(const JoinRequest& request) = 0;
};

}  // namespace moe::nccl

#endif  // MOE_EXPERTS_NCCL_BOOTSTRAP_H_
