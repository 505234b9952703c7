// The worker side of the NCCL transport (see nccl_worker.h). CUDA builds only.
#include "expert_worker/nccl_worker.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/status_macros.h"
#include "experts/cuda_expert_runner.h"
#include "experts/cuda_runtime.h"
#include "experts/nccl_comm.h"
#include "experts/nccl_plan.h"
#include "glog/logging.h"

namespace moe {
namespace {

using cuda::DeviceBuffer;
using cuda::PinnedBuffer;

// Waits until `comm`'s stream has done everything issued to it. CANCELLED
// when `stop` is set (the worker is leaving), UNAVAILABLE on an NCCL error.
// Idle waits (no header yet) poll every 100 us.
absl::Status WaitStream(nccl::Comm& comm, const std::atomic<bool>& stop) {
  int polls = 0;
  for (;;) {
    const cudaError_t q = cudaStreamQuery(comm.stream());
    if (q == cudaSuccess) return absl::OkStatus();
    if (q != cudaErrorNotReady) return cuda::CudaError("cudaStreamQuery (NCCL stream)", q);
    if (const ncclResult_t e = comm.AsyncError(); e != ncclSuccess && e != ncclInProgress) {
      return nccl::NcclError("NCCL", e);
    }
    if (stop.load()) return absl::CancelledError("the worker left the communicator");
    if (++polls > 1000) {
      absl::SleepFor(absl::Microseconds(100));
    } else {
      std::this_thread::yield();
    }
  }
}

class NcclWorkerJoiner : public nccl::Joiner {
 public:
  NcclWorkerJoiner(ExpertExecutor* executor, int ordinal) : executor_(executor), ordinal_(ordinal) {
    for (const ExpertKey& k : executor_->runner().keys()) {
      local_[static_cast<uint32_t>(k.layer)].push_back(static_cast<uint32_t>(k.expert));
    }
    for (auto& [layer, experts] : local_) std::sort(experts.begin(), experts.end());
  }
  ~NcclWorkerJoiner() override { Leave(); }

  absl::StatusOr<std::string> Join(const nccl::JoinRequest& r) override {
    Leave();  // a new generation replaces the old communicator
    ASSIGN_OR_RETURN(std::unique_ptr<nccl::Comm> comm,
                     nccl::Comm::Join(r.unique_id, r.rank, r.nranks, r.generation, ordinal_,
                                      absl::Milliseconds(r.timeout_ms)));
    absl::MutexLock lock(&mu_);
    stop_.store(false);
    comm_ = std::move(comm);
    loop_ = std::thread([this, c = comm_.get()] { Loop(*c); });
    return executor_->runner().device();
  }

 private:
  // Stops the loop (aborting the communicator releases a pending receive).
  void Leave() {
    std::thread loop;
    {
      absl::MutexLock lock(&mu_);
      stop_.store(true);
      if (comm_ != nullptr) comm_->Abort();
      loop = std::move(loop_);
    }
    if (loop.joinable()) loop.join();
    absl::MutexLock lock(&mu_);
    comm_.reset();
  }

  void Loop(nccl::Comm& comm) {
    const absl::Status st = Serve(comm);
    if (st.ok() || absl::IsCancelled(st)) {
      LOG(INFO) << "NCCL communicator generation " << comm.generation() << ": left (" << st << ")";
    } else {
      LOG(ERROR) << "NCCL communicator generation " << comm.generation() << ": " << st
                 << "; aborting the communicator";
    }
    comm.Abort();
  }

  absl::Status Serve(nccl::Comm& comm) {
    const nccl::NcclApi& api = nccl::LoadNccl();
    MOE_CUDA_CHECK(cudaSetDevice(ordinal_));
    const int64_t hidden = executor_->runner().config().hidden_size;
    // At most 2 GiB of rows in one exchange.
    const int64_t max_rows = (int64_t{1} << 31) / (hidden * static_cast<int64_t>(sizeof(float)));
    std::map<uint32_t, uint32_t> counts;
    for (const auto& [layer, experts] : local_) counts[layer] = static_cast<uint32_t>(experts.size());
    nccl::HeaderChecker checker(counts, comm.generation(), max_rows);
    DeviceBuffer header_dev, rows_dev, out_dev;
    PinnedBuffer header_host;
    RETURN_IF_ERROR(header_dev.Reserve(nccl::kHeaderBytes));
    RETURN_IF_ERROR(header_host.Reserve(nccl::kHeaderBytes));
    for (;;) {
      // Phase 0: the header.
      RETURN_IF_ERROR(comm.Group("ncclGroupEnd (header)", [&] {
        return nccl::NcclChecked("ncclRecv (header)", api.recv(header_dev.get(), nccl::kHeaderBytes, ncclUint8, 0,
                                                               comm.comm(), comm.stream()));
      }));
      RETURN_IF_ERROR(WaitStream(comm, stop_));
      MOE_CUDA_CHECK(cudaMemcpy(header_host.get(), header_dev.get(), nccl::kHeaderBytes, cudaMemcpyDeviceToHost));
      ASSIGN_OR_RETURN(const nccl::ExchangeHeader h,
                       nccl::DecodeHeader(absl::MakeConstSpan(header_host.as<uint8_t>(), nccl::kHeaderBytes)));
      RETURN_IF_ERROR(checker.Check(h));
      if (h.kind == nccl::HeaderKind::kStop) return absl::OkStatus();
      const int64_t rows = h.total_rows();
      if (rows == 0) continue;  // skipped: no rows, nothing back
      const size_t bytes = static_cast<size_t>(rows * hidden) * sizeof(float);
      RETURN_IF_ERROR(rows_dev.Reserve(bytes));
      RETURN_IF_ERROR(out_dev.Reserve(bytes));
      // Phase 1: the rows.
      RETURN_IF_ERROR(comm.Group("ncclGroupEnd (rows)", [&] {
        return nccl::NcclChecked("ncclRecv (rows)", api.recv(rows_dev.get(), static_cast<size_t>(rows * hidden),
                                                             ncclFloat32, 0, comm.comm(), comm.stream()));
      }));
      RETURN_IF_ERROR(WaitStream(comm, stop_));
      // The experts, on the compute thread.
      std::vector<std::pair<uint32_t, int64_t>> groups;
      const std::vector<uint32_t>& experts = local_.at(h.layer);
      for (size_t i = 0; i < experts.size(); ++i) groups.emplace_back(experts[i], h.rows[i]);
      absl::Status computed;
      absl::Notification done;
      executor_->Post([&](ExpertExecutor& ex) {
        computed = RunCudaExpertsOnDevice(ex.runner_in_job(), static_cast<int>(h.layer), groups,
                                          rows_dev.as<float>(), out_dev.as<float>());
        done.Notify();
      });
      done.WaitForNotification();
      RETURN_IF_ERROR(computed);
      // Phase 2: the outputs.
      RETURN_IF_ERROR(comm.Group("ncclGroupEnd (outputs)", [&] {
        return nccl::NcclChecked("ncclSend (outputs)", api.send(out_dev.get(), static_cast<size_t>(rows * hidden),
                                                                ncclFloat32, 0, comm.comm(), comm.stream()));
      }));
      RETURN_IF_ERROR(WaitStream(comm, stop_));
    }
  }

  ExpertExecutor* const executor_;
  const int ordinal_;
  std::map<uint32_t, std::vector<uint32_t>> local_;  // layer -> held experts, ascending
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::unique_ptr<nccl::Comm> comm_ ABSL_GUARDED_BY(mu_);
  std::thread loop_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<nccl::Joiner> MakeNcclWorkerJoiner(ExpertExecutor* executor, int ordinal) {
  return std::make_unique<NcclWorkerJoiner>(executor, ordinal);
}

}  // namespace moe
