#include "router/nccl_bootstrap.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experts/nccl_bootstrap.h"
#include "grpcpp/grpcpp.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {

absl::StatusOr<NcclBootstrapResult> BootstrapCommunicator(
    const NcclBootstrapOptions& o, uint64_t generation,
    const std::function<absl::Status(const std::string& unique_id, int nranks)>& join_self) {
  if (o.join_timeout_ms < 1 || o.join_timeout_ms > nccl::kMaxJoinTimeoutMs) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL join timeout: ", o.join_timeout_ms, " ms is outside [1, ",
                                                   nccl::kMaxJoinTimeoutMs, "]"));
  }
  const int nranks = static_cast<int>(o.worker_addresses.size()) + 1;
  if (nranks > nccl::kMaxRanks) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL transport: ", nranks - 1, " workers, at most ",
                                                   nccl::kMaxRanks - 1));
  }
  NcclBootstrapResult result;
  auto id = o.make_unique_id ? o.make_unique_id() : nccl::MakeUniqueId();
  if (!id.ok()) return id.status();
  result.unique_id = *id;
  result.worker_devices.resize(o.worker_addresses.size());
  std::vector<absl::Status> worker_status(o.worker_addresses.size());
  std::vector<std::thread> calls;
  for (size_t w = 0; w < o.worker_addresses.size(); ++w) {
    calls.emplace_back([&, w] {
      auto stub = moe::internal::v1::ExpertWorker::NewStub(rpc::MakeChannel(o.worker_addresses[w], &o.tls));
      moe::internal::v1::JoinCommunicatorRequest req;
      req.set_unique_id(result.unique_id);
      req.set_rank(static_cast<uint32_t>(w + 1));
      req.set_nranks(static_cast<uint32_t>(nranks));
      req.set_generation(generation);
      req.set_timeout_ms(static_cast<uint32_t>(o.join_timeout_ms));
      moe::internal::v1::JoinCommunicatorResponse resp;
      grpc::ClientContext ctx;
      // The worker answers once joined: its timeout plus time to answer.
      ctx.set_deadline(rpc::DeadlineIn(o.join_timeout_ms + 2000));
      // A worker still starting, or a connection attempt that fails once, is
      // retried until the deadline rather than failing the bootstrap at once.
      ctx.set_wait_for_ready(true);
      const grpc::Status s = stub->JoinCommunicator(&ctx, req, &resp);
      worker_status[w] = rpc::FromGrpcStatus(s);
      if (s.ok()) result.worker_devices[w] = resp.device();
    });
  }
  const absl::Status self = join_self(result.unique_id, nranks);
  for (std::thread& t : calls) t.join();
  std::vector<std::string> failed;
  absl::StatusCode code = absl::StatusCode::kOk;
  for (size_t w = 0; w < worker_status.size(); ++w) {
    if (worker_status[w].ok()) continue;
    failed.push_back(absl::StrCat(o.worker_addresses[w], " (rank ", w + 1, "): ", worker_status[w].message()));
    code = code == absl::StatusCode::kOk || code == worker_status[w].code() ? worker_status[w].code()
                                                                            : absl::StatusCode::kUnavailable;
  }
  if (!failed.empty()) {
    if (code == absl::StatusCode::kDeadlineExceeded) code = absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat("NCCL communicator generation ", generation, ": ", failed.size(),
                                           " worker(s) did not join: ", absl::StrJoin(failed, "; ")));
  }
  if (!self.ok()) {
    return absl::Status(self.code(), absl::StrCat("NCCL communicator generation ", generation,
                                                  ": the router (rank 0) did not join: ", self.message()));
  }
  return result;
}

}  // namespace moe
