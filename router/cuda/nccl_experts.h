// NcclExpertBackend: the routed experts reached over NCCL
// (`moe-router --expert-transport nccl`), the second expert transport next to
// gRPC (RemoteExpertBackend). gRPC keeps the control plane: GetInfo at start
// (what each worker holds), JoinCommunicator (router/nccl_bootstrap.h),
// health; NCCL moves each MoE layer's rows and outputs between GPU buffers
// as experts/nccl_plan.h lays out, on a communication stream of its own
// ordered after the dense device's stream with an event.
//
// With worker addresses, the router is rank 0 and worker w rank w + 1; each
// expert goes to the first worker holding it (no replicas over NCCL: a failed
// exchange fails the step's requests with UNAVAILABLE naming the worker, and
// the communicator is rebuilt with the next generation when next needed,
// once the worker is back). Without addresses, one rank: the router sends to
// itself and runs `local_runner` (a CUDA runner, in process) through the very
// same phases (header, rows, outputs), which is what a single GPU can test.
//
// Every exchange runs under the watchdog (experts/nccl_watchdog.h) with
// `dispatch_deadline_ms`. A transport only moves bytes: rows go to each
// expert in the order gRPC sends them, so the outputs, and the logits, are
// bitwise those of the gRPC transport.
//
// Thread-safety: Compute from one thread at a time (the engine thread).
#ifndef MOE_ROUTER_CUDA_NCCL_EXPERTS_H_
#define MOE_ROUTER_CUDA_NCCL_EXPERTS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/expert_backend.h"
#include "core/model_config.h"
#include "experts/expert_runner.h"
#include "proto/tls.h"

namespace moe {

struct NcclExpertsOptions {
  // Worker w is rank w + 1; empty: one rank, the experts in `local_runner`.
  std::vector<std::string> worker_addresses;
  // Without workers: the in-process experts (a CUDA runner); not owned.
  ExpertRunner* local_runner = nullptr;
  // The router's GPU (the dense device's).
  int ordinal = 0;
  // One layer's exchange, ms (--dispatch-deadline-ms).
  int64_t dispatch_deadline_ms = 5000;
  // GetInfo at start, and every rank joining a communicator, ms.
  int64_t connect_deadline_ms = 30000;
  rpc::TlsConfig tls;
  // Tests: while positive, each exchange's in-process side posts no receive
  // (as a stalled peer) and the count goes down by one. Not owned; may be null.
  std::atomic<int>* test_stall_exchanges = nullptr;
};

// FAILED_PRECONDITION without CUDA, or when a worker is not on a GPU;
// UNAVAILABLE naming a worker that cannot be reached or does not join.
absl::StatusOr<std::unique_ptr<ExpertBackend>> MakeNcclExpertBackend(const ModelConfig& config,
                                                                     const NcclExpertsOptions& options);

}  // namespace moe

#endif  // MOE_ROUTER_CUDA_NCCL_EXPERTS_H_
