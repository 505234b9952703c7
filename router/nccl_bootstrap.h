// The router's side of the NCCL transport's bootstrap (experts/nccl_bootstrap.h):
// a fresh unique id, every worker asked to join over gRPC
// (ExpertWorker.JoinCommunicator, all at once) while the router joins as
// rank 0. Nothing here needs a GPU except what `join_self` does.
#ifndef MOE_ROUTER_NCCL_BOOTSTRAP_H_
#define MOE_ROUTER_NCCL_BOOTSTRAP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/tls.h"

namespace moe {

struct NcclBootstrapOptions {
  // Worker w joins as rank w + 1.
  std::vector<std::string> worker_addresses;
  // Every rank must have joined within this, ms (JoinCommunicator's timeout).
  int64_t join_timeout_ms = 30000;
  rpc::TlsConfig tls;
  // Makes the unique id; default: NCCL's (nccl::MakeUniqueId).
  std::function<absl::StatusOr<std::string>()> make_unique_id;
};

// The devices the workers reported, in worker order.
struct NcclBootstrapResult {
  std::string unique_id;
  std::vector<std::string> worker_devices;
};

// `join_self(unique_id, nranks)` joins rank 0 and returns when every rank
// joined (or fails). UNAVAILABLE (or the workers' own code when they all
// agree) naming every worker that did not join and why; the router's own
// failure, with its message, otherwise.
absl::StatusOr<NcclBootstrapResult> BootstrapCommunicator(
    const NcclBootstrapOptions& options, uint64_t generation,
    const std::function<absl::Status(const std::string& unique_id, int nranks)>& join_self);

}  // namespace moe

#endif  // MOE_ROUTER_NCCL_BOOTSTRAP_H_
