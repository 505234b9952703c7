// NcclExpertBackend (see nccl_experts.h). CUDA builds only.
#include "router/cuda/nccl_experts.h"

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/status_macros.h"
#include "experts/cuda_expert_runner.h"
#include "experts/cuda_runtime.h"
#include "experts/nccl_bootstrap.h"
#include "experts/nccl_comm.h"
#include "experts/nccl_plan.h"
#include "experts/nccl_watchdog.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"
#include "router/cuda/dense_kernels.h"
#include "router/nccl_bootstrap.h"

namespace moe {
namespace {

using cuda::DeviceBuffer;
using cuda::PinnedBuffer;

// What the watchdog polls: everything issued on the communicator's stream
// up to `done`.
class StreamExchange : public nccl::Exchange {
 public:
  StreamExchange(nccl::Comm* comm, cudaEvent_t done, std::vector<int> workers)
      : comm_(comm), done_(done), workers_(std::move(workers)) {}
  State Poll(absl::Status* error) override {
    const cudaError_t q = cudaEventQuery(done_);
    if (q == cudaSuccess) return State::kDone;
    if (q != cudaErrorNotReady) {
      *error = cuda::CudaError("cudaEventQuery", q);
      return State::kFailed;
    }
    const ncclResult_t e = comm_->AsyncError();
    if (e != ncclSuccess && e != ncclInProgress) {
      *error = nccl::NcclError("ncclCommGetAsyncError", e);
      return State::kFailed;
    }
    return State::kRunning;
  }
  void Abort() override { comm_->Abort(); }
  std::vector<int> PendingWorkers() const override { return workers_; }

 private:
  nccl::Comm* comm_;
  cudaEvent_t done_;
  std::vector<int> workers_;
};

class NcclExpertBackend : public ExpertBackend {
 public:
  NcclExpertBackend(const ModelConfig& config, const NcclExpertsOptions& options)
      : config_(config),
        options_(options),
        keeper_([this](uint64_t generation) { return Build(generation); }) {}

  ~NcclExpertBackend() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (monitor_.joinable()) monitor_.join();
    if (done_ != nullptr) cudaEventDestroy(done_);
    if (ready_ != nullptr) cudaEventDestroy(ready_);
  }

  absl::Status Init() {
    MOE_CUDA_CHECK(cudaSetDevice(options_.ordinal));
    MOE_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    MOE_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    const int64_t E = config_.num_experts;
    owner_.assign(static_cast<size_t>(config_.num_hidden_layers) * E, -1);
    if (options_.worker_addresses.empty()) {
      if (options_.local_runner == nullptr) {
        return absl::InvalidArgumentError("NCCL transport: no workers and no in-process experts");
      }
      names_ = {"the router's in-process experts"};
      local_.resize(1);
      for (const ExpertKey& k : options_.local_runner->keys()) local_[0][k.layer].push_back(k.expert);
    } else {
      RETURN_IF_ERROR(AskWorkers());
    }
    for (size_t w = 0; w < local_.size(); ++w) {
      for (auto& [layer, experts] : local_[w]) {
        std::sort(experts.begin(), experts.end());
        if (experts.size() > static_cast<size_t>(nccl::kMaxHeaderExperts)) {
          return absl::FailedPreconditionError(absl::StrCat("NCCL transport: ", names_[w], " holds ", experts.size(),
                                                            " experts of layer ", layer, ", at most ",
                                                            nccl::kMaxHeaderExperts, " per worker and layer"));
        }
        for (int e : experts) {
          int& o = owner_[static_cast<size_t>(layer) * E + e];
          if (o < 0) o = static_cast<int>(w);  // the first worker holding it
        }
      }
    }
    for (int l = 0; l < config_.num_hidden_layers; ++l) {
      if (!config_.IsMoeLayer(l)) continue;
      for (int e = 0; e < E; ++e) {
        if (owner_[static_cast<size_t>(l) * E + e] < 0) {
          return absl::FailedPreconditionError(absl::StrCat("NCCL transport: no worker holds expert ", e,
                                                            " of layer ", l));
        }
      }
    }
    // The first communicator now: a worker that cannot join fails start-up.
    RETURN_IF_ERROR(keeper_.Get().status());
    if (!options_.worker_addresses.empty()) monitor_ = std::thread([this] { Monitor(); });
    return absl::OkStatus();
  }

  bool ComputesElsewhere() const override { return !options_.worker_addresses.empty(); }
  bool AcceptsDeviceRows() const override { return true; }

  absl::Status Compute(const ExpertBatch& b, float* outputs) override;

 private:
  // GetInfo of every worker: what it holds (each must be on a GPU).
  absl::Status AskWorkers() {
    names_ = options_.worker_addresses;
    local_.resize(names_.size());
    up_ = std::make_unique<std::atomic<bool>[]>(names_.size());
    for (size_t w = 0; w < names_.size(); ++w) {
      up_[w].store(true);
      auto stub = moe::internal::v1::ExpertWorker::NewStub(rpc::MakeChannel(names_[w], &options_.tls));
      moe::internal::v1::GetWorkerInfoRequest req;
      moe::internal::v1::WorkerInfo info;
      grpc::ClientContext ctx;
      ctx.set_deadline(rpc::DeadlineIn(options_.connect_deadline_ms));
      ctx.set_wait_for_ready(true);
      const grpc::Status s = stub->GetInfo(&ctx, req, &info);
      if (!s.ok()) {
        return absl::UnavailableError(absl::StrCat("NCCL transport: worker ", names_[w], ": ", s.error_message()));
      }
      if (info.hidden_size() != static_cast<uint32_t>(config_.hidden_size) ||
          info.num_experts() != static_cast<uint32_t>(config_.num_experts) ||
          info.num_layers() != static_cast<uint32_t>(config_.num_hidden_layers)) {
        return absl::FailedPreconditionError(absl::StrCat("NCCL transport: worker ", names_[w],
                                                          " serves another model (hidden ", info.hidden_size(),
                                                          ", ", info.num_experts(), " experts, ", info.num_layers(),
                                                          " layers)"));
      }
      if (info.device().rfind("cuda:", 0) != 0) {
        return absl::FailedPreconditionError(absl::StrCat("NCCL transport: worker ", names_[w], "'s experts run on ",
                                                          info.device(), "; NCCL needs workers on GPUs"));
      }
      for (const auto& id : info.experts()) {
        if (id.layer() < static_cast<uint32_t>(config_.num_hidden_layers) &&
            id.expert() < static_cast<uint32_t>(config_.num_experts)) {
          local_[w][static_cast<int>(id.layer())].push_back(static_cast<int>(id.expert()));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<nccl::Communicator>> Build(uint64_t generation) {
    const absl::Duration timeout = absl::Milliseconds(options_.connect_deadline_ms);
    std::unique_ptr<nccl::Comm> self;
    if (options_.worker_addresses.empty()) {
      ASSIGN_OR_RETURN(const std::string id, nccl::MakeUniqueId());
      ASSIGN_OR_RETURN(self, nccl::Comm::Join(id, 0, 1, generation, options_.ordinal, timeout));
    } else {
      NcclBootstrapOptions bo;
      bo.worker_addresses = options_.worker_addresses;
      bo.join_timeout_ms = options_.connect_deadline_ms;
      bo.tls = options_.tls;
      ASSIGN_OR_RETURN(NcclBootstrapResult joined,
                       BootstrapCommunicator(bo, generation, [&](const std::string& id, int nranks) -> absl::Status {
                         ASSIGN_OR_RETURN(self, nccl::Comm::Join(id, 0, nranks, generation, options_.ordinal,
                                                                 timeout));
                         return absl::OkStatus();
                       }));
      for (size_t w = 0; w < joined.worker_devices.size(); ++w) {
        LOG(INFO) << "NCCL generation " << generation << ": worker " << names_[w] << " is rank " << w + 1 << " on "
                  << joined.worker_devices[w];
      }
    }
    // Headers from now on carry this generation; the in-process side checks them.
    checker_ = std::make_unique<nccl::HeaderChecker>(LayerCounts(0), generation, int64_t{1} << 28);
    LOG(INFO) << "NCCL communicator generation " << generation << ": " << self->nranks() << " rank(s)";
    return std::unique_ptr<nccl::Communicator>(std::move(self));
  }

  std::map<uint32_t, uint32_t> LayerCounts(int w) const {
    std::map<uint32_t, uint32_t> counts;
    if (w < static_cast<int>(local_.size())) {
      for (const auto& [layer, experts] : local_[w]) counts[static_cast<uint32_t>(layer)] = experts.size();
    }
    return counts;
  }

  // Workers' gRPC health, for the watchdog.
  void Monitor() {
    std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> stubs;
    for (const std::string& a : names_) {
      stubs.push_back(grpc::health::v1::Health::NewStub(rpc::MakeChannel(a, &options_.tls)));
    }
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(100))) return;
      }
      for (size_t w = 0; w < stubs.size(); ++w) {
        grpc::health::v1::HealthCheckRequest req;
        grpc::health::v1::HealthCheckResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(rpc::DeadlineIn(1000));
        const grpc::Status s = stubs[w]->Check(&ctx, req, &resp);
        up_[w].store(s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING);
      }
    }
  }

  // Several ranks: the router's operations (nccl::RouterOps), one wait.
  absl::Status Exchange(nccl::Comm& comm, const ExpertBatch& b, const std::vector<int64_t>& rows_of_worker);
  // One rank: the router's and the in-process side's operations phase by
  // phase (nccl::SelfOps), the experts computed in between.
  absl::Status SelfExchange(nccl::Comm& comm, const ExpertBatch& b, const nccl::ExchangeHeader& header,
                            int64_t total);
  // Runs the watchdog over everything issued on the communicator's stream.
  absl::Status Wait(nccl::Comm& comm, int layer, std::vector<int> workers);

  const ModelConfig config_;
  const NcclExpertsOptions options_;
  nccl::CommunicatorKeeper keeper_;
  std::unique_ptr<nccl::HeaderChecker> checker_;  // the in-process side's (one rank)
  std::vector<std::string> names_;
  // [worker][layer] the experts it holds, ascending: the header's entries
  // (an expert another worker computes gets 0 rows).
  std::vector<std::map<int, std::vector<int>>> local_;
  std::vector<int> owner_;                              // [layer * E + expert] -> worker
  std::unique_ptr<std::atomic<bool>[]> up_;
  uint64_t step_ = 0;
  cudaEvent_t done_ = nullptr, ready_ = nullptr;
  DeviceBuffer hidden_, send_, recv_, out_, index_, headers_dev_, self_header_, self_rows_, self_out_;
  PinnedBuffer host_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread monitor_;
};

absl::Status NcclExpertBackend::Wait(nccl::Comm& comm, int layer, std::vector<int> workers) {
  MOE_CUDA_CHECK(cudaEventRecord(done_, comm.stream()));
  StreamExchange x(&comm, done_, std::move(workers));
  nccl::WatchdogOptions wo;
  wo.deadline = absl::Milliseconds(options_.dispatch_deadline_ms);
  wo.worker_names = names_;
  if (up_ != nullptr) wo.worker_up = [this](int w) { return up_[w].load(); };
  return nccl::WaitForExchange(x, layer, wo);
}

absl::Status NcclExpertBackend::Compute(const ExpertBatch& b, float* outputs) {
  const int64_t T = b.num_tokens, K = b.top_k, D = b.hidden, E = config_.num_experts;
  const int64_t choices = T * K;
  if (choices == 0) return absl::OkStatus();
  MOE_CUDA_CHECK(cudaSetDevice(options_.ordinal));
  ASSIGN_OR_RETURN(nccl::Communicator * communicator, keeper_.Get());
  auto& comm = static_cast<nccl::Comm&>(*communicator);
  ++step_;
  // The plan: per worker, the experts it holds in the layer ascending (the
  // ones it computes, owner_, get rows), each expert's choices ascending
  // (the order gRPC sends them in). gather[r] is row r's
  // token, scatter[r] its choice (t * K + j).
  const size_t W = local_.size();
  std::vector<std::vector<std::vector<int64_t>>> by_expert(W);  // [worker][local index] choices
  std::vector<std::map<int, int>> local_index(W);
  for (size_t w = 0; w < W; ++w) {
    auto it = local_[w].find(b.layer);
    const std::vector<int> none;
    const std::vector<int>& experts = it == local_[w].end() ? none : it->second;
    by_expert[w].resize(experts.size());
    for (size_t i = 0; i < experts.size(); ++i) local_index[w][experts[i]] = static_cast<int>(i);
  }
  for (int64_t c = 0; c < choices; ++c) {
    const int e = b.experts[c];
    if (e < 0 || e >= E) return absl::InternalError(absl::StrCat("expert id ", e, " outside [0, ", E, ")"));
    const int w = owner_[static_cast<size_t>(b.layer) * E + e];
    by_expert[w][local_index[w].at(e)].push_back(c);
  }
  std::vector<int64_t> rows_of_worker(W, 0);
  std::vector<nccl::ExchangeHeader> headers(W);
  std::vector<int32_t> index;  // gather (tokens), then scatter (choices)
  std::vector<int32_t> scatter;
  for (size_t w = 0; w < W; ++w) {
    headers[w].generation = comm.generation();
    headers[w].step = step_;
    headers[w].layer = static_cast<uint32_t>(b.layer);
    for (const std::vector<int64_t>& list : by_expert[w]) {
      headers[w].rows.push_back(static_cast<uint32_t>(list.size()));
      for (int64_t c : list) {
        index.push_back(static_cast<int32_t>(c / K));
        scatter.push_back(static_cast<int32_t>(c));
      }
      rows_of_worker[w] += static_cast<int64_t>(list.size());
    }
  }
  const int64_t total = static_cast<int64_t>(index.size());
  index.insert(index.end(), scatter.begin(), scatter.end());
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  RETURN_IF_ERROR(index_.Reserve(index.size() * sizeof(int32_t)));
  RETURN_IF_ERROR(send_.Reserve(total * row_bytes));
  RETURN_IF_ERROR(recv_.Reserve(total * row_bytes));
  RETURN_IF_ERROR(headers_dev_.Reserve(W * nccl::kHeaderBytes));
  RETURN_IF_ERROR(host_.Reserve(std::max(index.size() * sizeof(int32_t), W * nccl::kHeaderBytes)));
  const cudaStream_t cs = comm.stream();
  // After the dense device's stream: its rows are ready there.
  if (b.device_stream != nullptr) {
    MOE_CUDA_CHECK(cudaEventRecord(ready_, static_cast<cudaStream_t>(b.device_stream)));
    MOE_CUDA_CHECK(cudaStreamWaitEvent(cs, ready_, 0));
  }
  const float* hidden = b.device_hidden_states;
  if (hidden == nullptr) {  // host rows (a CPU dense device): up first
    RETURN_IF_ERROR(hidden_.Reserve(static_cast<size_t>(T) * row_bytes));
    MOE_CUDA_CHECK(cudaMemcpyAsync(hidden_.get(), b.hidden_states, T * row_bytes, cudaMemcpyHostToDevice, cs));
    hidden = hidden_.as<float>();
  }
  std::memcpy(host_.get(), index.data(), index.size() * sizeof(int32_t));
  MOE_CUDA_CHECK(cudaMemcpyAsync(index_.get(), host_.get(), index.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                                 cs));
  MOE_CUDA_CHECK(cuda::LaunchGatherRows(hidden, index_.as<int32_t>(), total, D, send_.as<float>(), cs));
  // The header bytes go up through the same pinned buffer after the indices
  // are on the device.
  MOE_CUDA_CHECK(cudaStreamSynchronize(cs));
  for (size_t w = 0; w < W; ++w) {
    ASSIGN_OR_RETURN(const nccl::HeaderBytes bytes, nccl::EncodeHeader(headers[w]));
    std::memcpy(host_.data() + w * nccl::kHeaderBytes, bytes.data(), nccl::kHeaderBytes);
  }
  MOE_CUDA_CHECK(cudaMemcpyAsync(headers_dev_.get(), host_.get(), W * nccl::kHeaderBytes, cudaMemcpyHostToDevice, cs));
  absl::Status st = options_.worker_addresses.empty() ? SelfExchange(comm, b, headers[0], total)
                                                       : Exchange(comm, b, rows_of_worker);
  if (!st.ok()) {
    keeper_.MarkBroken();  // aborted: the next step builds a new communicator
    return st;
  }
  // The outputs to their choices' rows.
  const int32_t* scatter_dev = index_.as<int32_t>() + total;
  if (b.device_outputs != nullptr) {
    MOE_CUDA_CHECK(cuda::LaunchScatterRows(recv_.as<float>(), scatter_dev, total, D, b.device_outputs, cs));
    MOE_CUDA_CHECK(cudaStreamSynchronize(cs));
  } else {
    RETURN_IF_ERROR(out_.Reserve(static_cast<size_t>(choices) * row_bytes));
    MOE_CUDA_CHECK(cuda::LaunchScatterRows(recv_.as<float>(), scatter_dev, total, D, out_.as<float>(), cs));
    MOE_CUDA_CHECK(cudaMemcpyAsync(outputs, out_.get(), choices * row_bytes, cudaMemcpyDeviceToHost, cs));
    MOE_CUDA_CHECK(cudaStreamSynchronize(cs));
  }
  return absl::OkStatus();
}

absl::Status NcclExpertBackend::Exchange(nccl::Comm& comm, const ExpertBatch& b,
                                         const std::vector<int64_t>& rows_of_worker) {
  const nccl::NcclApi& api = nccl::LoadNccl();
  const int64_t D = b.hidden;
  const size_t W = rows_of_worker.size();
  // The router's operations, as nccl::RouterOps lists them: the headers, the
  // rows, then the outputs back (one group each; nothing waits in between).
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (headers)", [&]() -> absl::Status {
    for (size_t w = 0; w < W; ++w) {
      RETURN_IF_ERROR(nccl::NcclChecked("ncclSend (header)",
                              api.send(headers_dev_.as<uint8_t>() + w * nccl::kHeaderBytes, nccl::kHeaderBytes,
                                       ncclUint8, static_cast<int>(w) + 1, comm.comm(), comm.stream())));
    }
    return absl::OkStatus();
  }));
  std::vector<int64_t> offset(W + 1, 0);
  for (size_t w = 0; w < W; ++w) offset[w + 1] = offset[w] + rows_of_worker[w];
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (rows)", [&]() -> absl::Status {
    for (size_t w = 0; w < W; ++w) {
      if (rows_of_worker[w] == 0) continue;
      RETURN_IF_ERROR(nccl::NcclChecked("ncclSend (rows)", api.send(send_.as<float>() + offset[w] * D,
                                                          static_cast<size_t>(rows_of_worker[w] * D), ncclFloat32,
                                                          static_cast<int>(w) + 1, comm.comm(), comm.stream())));
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (outputs)", [&]() -> absl::Status {
    for (size_t w = 0; w < W; ++w) {
      if (rows_of_worker[w] == 0) continue;
      RETURN_IF_ERROR(nccl::NcclChecked("ncclRecv (outputs)", api.recv(recv_.as<float>() + offset[w] * D,
                                                             static_cast<size_t>(rows_of_worker[w] * D), ncclFloat32,
                                                             static_cast<int>(w) + 1, comm.comm(), comm.stream())));
    }
    return absl::OkStatus();
  }));
  std::vector<int> pending;
  for (size_t w = 0; w < W; ++w) pending.push_back(static_cast<int>(w));
  return Wait(comm, b.layer, pending);
}

absl::Status NcclExpertBackend::SelfExchange(nccl::Comm& comm, const ExpertBatch& b,
                                             const nccl::ExchangeHeader& header, int64_t total) {
  const nccl::NcclApi& api = nccl::LoadNccl();
  const int64_t D = b.hidden;
  bool stall = false;
  if (options_.test_stall_exchanges != nullptr && options_.test_stall_exchanges->load() > 0) {
    options_.test_stall_exchanges->fetch_sub(1);
    stall = true;
  }
  RETURN_IF_ERROR(self_header_.Reserve(nccl::kHeaderBytes));
  // Phase 0, as nccl::SelfOps: the router's header send and the in-process
  // side's receive in one group.
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (header)", [&]() -> absl::Status {
    RETURN_IF_ERROR(nccl::NcclChecked("ncclSend (header)", api.send(headers_dev_.get(), nccl::kHeaderBytes, ncclUint8, 0,
                                                          comm.comm(), comm.stream())));
    if (stall) return absl::OkStatus();  // a peer that never receives
    return nccl::NcclChecked("ncclRecv (header)", api.recv(self_header_.get(), nccl::kHeaderBytes, ncclUint8, 0, comm.comm(),
                                                 comm.stream()));
  }));
  RETURN_IF_ERROR(Wait(comm, b.layer, {0}));
  nccl::HeaderBytes bytes;
  MOE_CUDA_CHECK(cudaMemcpy(bytes.data(), self_header_.get(), nccl::kHeaderBytes, cudaMemcpyDeviceToHost));
  ASSIGN_OR_RETURN(const nccl::ExchangeHeader got, nccl::DecodeHeader(bytes));
  if (absl::Status s = checker_->Check(got); !s.ok()) {
    comm.Abort();
    return absl::InternalError(absl::StrCat("NCCL transport: ", s.message()));
  }
  const int64_t rows = got.total_rows();
  if (rows != total || got.rows != header.rows) {
    comm.Abort();
    return absl::InternalError("NCCL transport: desync: the header received is not the header sent");
  }
  if (rows == 0) return absl::OkStatus();
  const size_t bytes_rows = static_cast<size_t>(rows * D) * sizeof(float);
  RETURN_IF_ERROR(self_rows_.Reserve(bytes_rows));
  RETURN_IF_ERROR(self_out_.Reserve(bytes_rows));
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (rows)", [&]() -> absl::Status {
    RETURN_IF_ERROR(nccl::NcclChecked("ncclSend (rows)", api.send(send_.get(), static_cast<size_t>(rows * D), ncclFloat32, 0,
                                                        comm.comm(), comm.stream())));
    return nccl::NcclChecked("ncclRecv (rows)", api.recv(self_rows_.get(), static_cast<size_t>(rows * D), ncclFloat32, 0,
                                               comm.comm(), comm.stream()));
  }));
  RETURN_IF_ERROR(Wait(comm, b.layer, {0}));
  std::vector<std::pair<uint32_t, int64_t>> groups;
  const std::vector<int>& experts = local_[0].at(b.layer);
  for (size_t i = 0; i < experts.size(); ++i) groups.emplace_back(static_cast<uint32_t>(experts[i]), got.rows[i]);
  RETURN_IF_ERROR(RunCudaExpertsOnDevice(*options_.local_runner, b.layer, groups, self_rows_.as<float>(),
                                         self_out_.as<float>()));
  RETURN_IF_ERROR(comm.Group("ncclGroupEnd (outputs)", [&]() -> absl::Status {
    RETURN_IF_ERROR(nccl::NcclChecked("ncclSend (outputs)", api.send(self_out_.get(), static_cast<size_t>(rows * D),
                                                           ncclFloat32, 0, comm.comm(), comm.stream())));
    return nccl::NcclChecked("ncclRecv (outputs)", api.recv(recv_.get(), static_cast<size_t>(rows * D), ncclFloat32, 0,
                                                  comm.comm(), comm.stream()));
  }));
  return Wait(comm, b.layer, {0});
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExpertBackend>> MakeNcclExpertBackend(const ModelConfig& config,
                                                                     const NcclExpertsOptions& options) {
  if (options.dispatch_deadline_ms < 1 || options.connect_deadline_ms < 1) {
    return absl::InvalidArgumentError("NCCL transport: deadlines must be >= 1 ms");
  }
  auto backend = std::make_unique<NcclExpertBackend>(config, options);
  RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<ExpertBackend>(std::move(backend));
}

}  // namespace moe
