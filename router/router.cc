#include "router/router.h"

#include <filesystem>

#include "core/status_macros.h"
#include "experts/expert_shard.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grammar/constraint.h"
#include "router/dense_model.h"
#include "router/cuda/cuda_dense_device.h"
#include "router/cuda/nccl_experts.h"
#include "router/forward.h"
#include "router/remote_experts.h"
#include "router/router_service.h"
#include "core/metrics_server.h"

namespace moe {

absl::StatusOr<std::unique_ptr<Router>> Router::Create(const RouterOptions& options) {
  auto r = std::unique_ptr<Router>(new Router());
  ASSIGN_OR_RETURN(r->checkpoint_, Checkpoint::Open(options.model_dir));
  const ModelConfig& config = r->checkpoint_->config();
  ASSIGN_OR_RETURN(r->dense_, DenseModel::Load(*r->checkpoint_));
  r->pool_ = std::make_unique<ThreadPool>(options.threads);
  moe::v1::ModelInfo info;
  info.set_model_id(std::filesystem::path(options.model_dir).lexically_normal().filename().string());
  if (info.model_id().empty()) {
    info.set_model_id(std::filesystem::path(options.model_dir).lexically_normal().parent_path().filename().string());
  }
  info.set_family(std::string(ModelFamilyName(config.family)));
  info.set_context_length(static_cast<uint32_t>(config.max_position_embeddings));
  info.set_vocab_size(static_cast<uint32_t>(config.vocab_size));
  info.set_num_layers(static_cast<uint32_t>(config.num_hidden_layers));
  info.set_num_experts(static_cast<uint32_t>(config.num_experts));
  info.set_experts_per_token(static_cast<uint32_t>(config.num_experts_per_tok));
  info.set_hidden_size(static_cast<uint32_t>(config.hidden_size));
  for (int64_t id : config.eos_token_ids) info.add_eos_token_ids(static_cast<uint32_t>(id));
  ASSIGN_OR_RETURN(const ExpertDevice dense_device, ParseExpertDevice(options.device));
  if (options.expert_transport != "grpc" && options.expert_transport != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("expert_transport: '", options.expert_transport, "' is not grpc or nccl"));
  }
  const bool nccl = options.expert_transport == "nccl";
  if (options.worker_addresses.empty()) {
    ASSIGN_OR_RETURN(const ExpertDevice device, ParseExpertDevice(options.expert_device));
    ASSIGN_OR_RETURN(std::unique_ptr<ExpertShard> shard, ExpertShard::Load(*r->checkpoint_, {}));
    if (nccl && !device.cuda) {
      return absl::FailedPreconditionError(
          "--expert-transport nccl with --workers local needs the experts on a GPU (--expert-device cuda:N)");
    }
    if (device.cuda) {
      ASSIGN_OR_RETURN(r->local_runner_, MakeCudaExpertRunner(std::move(shard), device.ordinal));
      if (nccl) {
        NcclExpertsOptions no;
        no.local_runner = r->local_runner_.get();
        no.ordinal = device.ordinal;
        no.dispatch_deadline_ms = options.dispatch_deadline_ms;
        no.connect_deadline_ms = options.connect_deadline_ms;
        ASSIGN_OR_RETURN(r->experts_, MakeNcclExpertBackend(config, no));
      } else {
        r->experts_ = std::make_unique<LocalExpertBackend>(r->local_runner_.get());
      }
      LOG(INFO) << "router: local experts on " << r->local_runner_->device() << " over "
                << options.expert_transport;
    } else {
      r->local_shard_ = std::move(shard);
      r->experts_ = std::make_unique<LocalExpertBackend>(r->local_shard_.get(), r->pool_.get());
    }
    info.add_workers("local");
  } else if (nccl) {
    if (!dense_device.cuda) {
      return absl::FailedPreconditionError(
          "--expert-transport nccl with remote workers needs the router on a GPU (--device cuda:N)");
    }
    NcclExpertsOptions no;
    no.worker_addresses = options.worker_addresses;
    no.ordinal = dense_device.ordinal;
    no.dispatch_deadline_ms = options.dispatch_deadline_ms;
    no.connect_deadline_ms = options.connect_deadline_ms;
    no.tls = options.tls;
    ASSIGN_OR_RETURN(r->experts_, MakeNcclExpertBackend(config, no));
    for (const std::string& a : options.worker_addresses) info.add_workers(a);
  } else {
    RemoteExpertsOptions ro;
    ro.worker_addresses = options.worker_addresses;
    ro.dispatch_deadline_ms = options.dispatch_deadline_ms;
    ro.connect_deadline_ms = options.connect_deadline_ms;
    ro.tls = options.tls;
    Router* self = r.get();
    ro.on_serviceable_change = [self](bool) { self->UpdateServing(); };
    ASSIGN_OR_RETURN(std::unique_ptr<RemoteExpertBackend> remote, RemoteExpertBackend::Connect(config, ro));
    {
      absl::MutexLock lock(&r->health_mu_);  // the monitor may call UpdateServing already
      r->remote_ = remote.get();
    }
    r->experts_ = std::move(remote);
    for (const std::string& a : options.worker_addresses) info.add_workers(a);
  }
  if (dense_device.cuda) {
    ASSIGN_OR_RETURN(r->device_, MakeCudaDenseDevice(r->dense_.get(), r->experts_.get(), dense_device.ordinal));
  } else {
    r->device_ = std::make_unique<ForwardPass>(r->dense_.get(), r->experts_.get(), r->pool_.get());
  }
  LOG(INFO) << "router: dense model on " << r->device_->name();
  // Structured output needs the token bytes of the model's tokenizer.
  EngineOptions engine_options = options.engine;
  if (auto vocab = grammar::TokenVocabulary::FromDirectory(options.model_dir); vocab.ok()) {
    r->vocabulary_ = std::move(*vocab);
    r->constraints_ = std::make_unique<grammar::ConstraintCompiler>(r->vocabulary_.get());
    engine_options.constraints = r->constraints_.get();
  } else {
    LOG(WARNING) << "structured output is off (requests with a constraint are refused): " << vocab.status();
  }
  ASSIGN_OR_RETURN(r->engine_, Engine::Create(r->device_.get(), engine_options));
  const EngineOptions& eo = options.engine;
  LOG(INFO) << "KV cache: " << (eo.kv_cache.capacity_bytes >> 20) << " MiB = " << r->engine_->kv_blocks_total()
            << " blocks of " << eo.kv_cache.block_size_tokens << " tokens = " << r->engine_->kv_capacity_tokens()
            << " tokens (" << KvCache::BytesPerBlock(config, eo.kv_cache.block_size_tokens) << " bytes per block, in "
            << (dense_device.cuda ? "device" : "host") << " memory); "
            << "prefix caching " << (eo.kv_cache.enable_prefix_caching ? "on" : "off") << "; at most "
            << eo.max_running_seqs << " running sequences, " << eo.max_batch_tokens << " tokens per step, "
            << eo.max_waiting_requests << " waiting requests, " << eo.max_waiting_tokens << " waiting tokens";
  r->metrics_ = std::make_unique<RouterMetrics>();
  Router* self = r.get();
  r->service_ = std::make_unique<RouterService>(
      r->engine_.get(), info, r->metrics_.get(), [self](moe::internal::v1::LoadReport* report) {
        RemoteExpertBackend* remote;
        bool draining;
        {
          absl::MutexLock lock(&self->health_mu_);
          remote = self->remote_;
          draining = self->draining_;
        }
        // Live, not the health service's last update (the monitor's tick).
        report->set_serving(!draining && (remote == nullptr || remote->Serviceable()));
        if (remote == nullptr) return;
        for (const RemoteExpertBackend::WorkerStats& w : remote->Stats()) {
          moe::internal::v1::WorkerHealth* h = report->add_workers();
          h->set_address(w.address);
          h->set_healthy(w.up);
          h->set_detail(w.last_error);
        }
      });
  if (!options.metrics_listen_address.empty()) {
    Router* self = r.get();
    ASSIGN_OR_RETURN(r->metrics_server_,
                     MetricsServer::Start(options.metrics_listen_address, [self] { return self->RenderMetrics(); },
                                          options.metrics_address_file));
    LOG(INFO) << "router metrics on http://" << r->metrics_server_->address() << "/metrics";
  }
  rpc::ServerOptions so;
  so.listen_address = options.listen_address;
  so.address_file = options.address_file;
  so.credentials = rpc::ServerCredentials(options.tls);
  so.health_services = {moe::internal::v1::Router::service_full_name()};
  ASSIGN_OR_RETURN(std::unique_ptr<rpc::RunningServer> server, rpc::RunningServer::Start(so, {r->service_.get()}));
  {
    absl::MutexLock lock(&r->health_mu_);
    r->server_ = std::move(server);
  }
  r->UpdateServing();
  LOG(INFO) << "router serving " << options.model_dir << " on " << r->server_->address() << " with "
            << (options.worker_addresses.empty() ? std::string("in-process experts")
                                                 : std::to_string(options.worker_addresses.size()) + " workers");
  return r;
}

Router::~Router() {
  Shutdown();
  // The experts' health monitor calls UpdateServing: stop it while every
  // member is still alive (the engine first, which uses the experts).
  engine_.reset();
  device_.reset();
  {
    absl::MutexLock lock(&health_mu_);
    remote_ = nullptr;
  }
  experts_.reset();
}

std::string Router::RenderMetrics() const {
  if (remote_ == nullptr) return metrics_->Render(engine_->Stats(), nullptr);
  const std::vector<RemoteExpertBackend::WorkerStats> workers = remote_->Stats();
  const RouterMetrics::Failovers failovers{remote_->failovers(), remote_->retries()};
  return metrics_->Render(engine_->Stats(), &workers, &failovers);
}

const std::string& Router::address() const { return server_->address(); }

void Router::UpdateServing() {
  absl::MutexLock lock(&health_mu_);
  serving_ = !draining_ && (remote_ == nullptr || remote_->Serviceable());
  if (server_ != nullptr) server_->SetServing(serving_);
}

int64_t Router::Drain(absl::Duration timeout) {
  {
    absl::MutexLock lock(&health_mu_);
    draining_ = true;
  }
  UpdateServing();
  engine_->StopAccepting();
  const absl::Time deadline = absl::Now() + timeout;
  int64_t left = engine_->InFlight();
  LOG(INFO) << "draining: " << left << " request(s) in flight, waiting up to " << absl::FormatDuration(timeout);
  while (left > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    left = engine_->InFlight();
  }
  if (left > 0) {
    LOG(WARNING) << "drain timeout: ending " << left << " request(s) with UNAVAILABLE";
    engine_->Stop(absl::UnavailableError(absl::StrCat("the router shut down before the request finished (drain of ",
                                                      absl::FormatDuration(timeout), " ran out)")));
  } else {
    LOG(INFO) << "drained: every request finished";
  }
  return left;
}

void Router::Shutdown() {
  {
    absl::MutexLock lock(&health_mu_);
    draining_ = true;
  }
  UpdateServing();
  std::unique_ptr<rpc::RunningServer> server;
  {
    absl::MutexLock lock(&health_mu_);
    server = std::move(server_);
  }
  if (server != nullptr) {
    // Ending the engine first finishes every open stream (CANCELLED, or
    // UNAVAILABLE after a drain ran out), so the server's shutdown does not
    // wait for them.
    engine_->Stop();
    server->Shutdown();
  }
}

}  // namespace moe
