#include "expert_worker/worker_server.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experts/cpu_expert_runner.h"
#include "experts/cuda_expert_runner.h"
#include "experts/expert_spec.h"
#include "expert_worker/nccl_worker.h"
#include "expert_worker/worker_service.h"
#include "glog/logging.h"

namespace moe {

absl::StatusOr<std::unique_ptr<ExpertWorkerServer>> ExpertWorkerServer::Start(const Checkpoint& checkpoint,
                                                                               std::vector<ExpertKey> keys,
                                                                               const ExpertWorkerOptions& options) {
  if (options.compute_threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("compute_threads is ", options.compute_threads, "; want >= 0"));
  }
  if (options.lone_expert_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lone_expert_threads is ", options.lone_expert_threads, "; want >= 0"));
  }
  ASSIGN_OR_RETURN(const ExpertDevice device, ParseExpertDevice(options.device));
  ASSIGN_OR_RETURN(std::unique_ptr<ExpertShard> shard, ExpertShard::Load(checkpoint, std::move(keys)));
  LOG(INFO) << "expert worker: loaded " << DescribeExperts(shard->keys()) << " (" << shard->weight_bytes()
            << " bytes of weights) from " << checkpoint.dir();
  auto worker = std::unique_ptr<ExpertWorkerServer>(new ExpertWorkerServer());
  std::unique_ptr<ExpertRunner> runner;
  if (device.cuda) {
    ASSIGN_OR_RETURN(runner, MakeCudaExpertRunner(std::move(shard), device.ordinal));
  } else {
    CpuExpertOptions cpu;
    cpu.compute_threads = options.compute_threads;
    cpu.pool_cpus = options.pool_cpus;
    cpu.lone_expert_threads = options.lone_expert_threads;
    runner = std::make_unique<CpuExpertRunner>(std::move(shard), cpu);
  }
  LOG(INFO) << "expert worker: experts run on " << runner->device();
  worker->executor_ = std::make_unique<ExpertExecutor>(std::move(runner));
  nccl::Joiner* joiner = options.nccl_joiner;
  if (joiner == nullptr && device.cuda) {
    worker->joiner_ = MakeNcclWorkerJoiner(worker->executor_.get(), device.ordinal);
    joiner = worker->joiner_.get();
  }
  worker->service_ = std::make_unique<ExpertWorkerService>(worker->executor_.get(), joiner);
  rpc::ServerOptions server_options;
  server_options.listen_address = options.listen_address;
  server_options.address_file = options.address_file;
  server_options.credentials = rpc::ServerCredentials(options.tls);
  server_options.health_services = {moe::internal::v1::ExpertWorker::service_full_name()};
  ASSIGN_OR_RETURN(worker->server_, rpc::RunningServer::Start(server_options, {worker->service_.get()}));
  worker->server_->SetServing(true);
  LOG(INFO) << "expert worker: serving on " << worker->server_->address();
  return worker;
}

absl::StatusOr<std::unique_ptr<ExpertWorkerServer>> ExpertWorkerServer::Start(const std::string& model_dir,
                                                                               absl::string_view spec,
                                                                               const ExpertWorkerOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(model_dir));
  const ModelConfig& c = checkpoint->config();
  ASSIGN_OR_RETURN(std::vector<ExpertKey> keys, ParseExpertSpec(spec, c.num_hidden_layers, c.num_experts, c.DenseLayers()));
  ASSIGN_OR_RETURN(std::unique_ptr<ExpertWorkerServer> worker, Start(*checkpoint, std::move(keys), options));
  worker->owned_checkpoint_ = std::move(checkpoint);
  return worker;
}

ExpertWorkerServer::~ExpertWorkerServer() {
  if (server_ != nullptr) server_->Shutdown();
  server_.reset();
  service_.reset();
  executor_.reset();
}

void ExpertWorkerServer::Shutdown(std::chrono::milliseconds grace) { server_->Shutdown(grace); }

void ExpertWorkerServer::Drain(std::chrono::milliseconds timeout) {
  server_->SetServing(false);
  service_->StopAccepting();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (service_->InFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  LOG(INFO) << "expert worker: drained (" << service_->InFlight() << " exchange(s) still in flight)";
}

}  // namespace moe
