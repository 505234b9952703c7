// NCCL for the expert transport (CUDA builds only): the library loaded at run
// time (libnccl.so.2: like cuBLAS, not mapped by processes that never use
// it), and one communicator joined non-blocking with a deadline.
//
// Thread-safety: a Comm is used by one thread at a time, except Abort, which
// any thread may call to end what another is waiting for.
#ifndef MOE_EXPERTS_NCCL_COMM_H_
#define MOE_EXPERTS_NCCL_COMM_H_

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "experts/nccl_watchdog.h"

namespace moe::nccl {

// The NCCL entry points the transport uses.
struct NcclApi {
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRankConfig) init_rank_config = nullptr;
  decltype(&ncclCommGetAsyncError) get_async_error = nullptr;
  decltype(&ncclCommAbort) abort = nullptr;
  decltype(&ncclCommDestroy) destroy = nullptr;
  decltype(&ncclSend) send = nullptr;
  decltype(&ncclRecv) recv = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  std::string error;  // why it could not be loaded; empty when it was
};
const NcclApi& LoadNccl();

// UNAVAILABLE "<call>: <NCCL error string>".
absl::Status NcclError(const char* call, ncclResult_t r);

// OK for ncclSuccess and ncclInProgress (a non-blocking communicator's
// calls return it); NcclError(call, r) otherwise.
absl::Status NcclChecked(const char* call, ncclResult_t r);

// One rank of a communicator, with its own communication stream.
class Comm : public Communicator {
 public:
  // Joins (ncclCommInitRankConfig, non-blocking) on CUDA device `ordinal`
  // and waits until every rank has joined or `timeout` passes (then aborts:
  // UNAVAILABLE). `unique_id` is kUniqueIdBytes bytes.
  static absl::StatusOr<std::unique_ptr<Comm>> Join(const std::string& unique_id, int rank, int nranks,
                                                    uint64_t generation, int ordinal, absl::Duration timeout);
  // Aborts (never waits for a peer).
  ~Comm() override;

  uint64_t generation() const override { return generation_; }
  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  int ordinal() const { return ordinal_; }
  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }

  // After a group of operations was issued: waits while NCCL reports it in
  // progress (a non-blocking communicator returns ncclInProgress), at most
  // `timeout`. UNAVAILABLE on an error or when the time passes.
  absl::Status WaitIssued(absl::Duration timeout);
  // The communicator's asynchronous error (ncclSuccess while healthy).
  ncclResult_t AsyncError() const;
  // Ends every pending operation; the communicator is unusable afterwards.
  void Abort();
  bool aborted() const { return aborted_.load(); }

  // One NCCL group: `post` makes the group's calls (ncclSend/ncclRecv on
  // stream()); returns once NCCL has issued them (WaitIssued), not when
  // they complete. `what` names the group in errors.
  template <typename Post>
  absl::Status Group(const char* what, Post post) {
    const NcclApi& api = LoadNccl();
    if (ncclResult_t e = api.group_start(); e != ncclSuccess) return NcclError("ncclGroupStart", e);
    const absl::Status posted = post();
    const ncclResult_t end = api.group_end();
    if (!posted.ok()) return posted;
    if (absl::Status s = NcclChecked(what, end); !s.ok()) return s;
    return WaitIssued(absl::Seconds(30));
  }

 private:
  Comm(int rank, int nranks, uint64_t generation, int ordinal)
      : rank_(rank), nranks_(nranks), generation_(generation), ordinal_(ordinal) {}
  const int rank_, nranks_;
  const uint64_t generation_;
  const int ordinal_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::atomic<bool> aborted_{false};
};

}  // namespace moe::nccl

#endif  // MOE_EXPERTS_NCCL_COMM_H_
