#include "gateway/gateway.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "glog/logging.h"

namespace moe {

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(const GatewayOptions& options) {
  if (options.router_addresses.empty()) return absl::InvalidArgumentError("routers: at least one address is required");
  auto g = std::unique_ptr<Gateway>(new Gateway());
  GatewayServiceOptions service_options = options.service;
  if (!options.api_keys_file.empty()) {
    ASSIGN_OR_RETURN(ApiKeys keys, ApiKeys::Load(options.api_keys_file));
    g->api_keys_ = std::make_unique<ApiKeys>(std::move(keys));
    service_options.api_keys = g->api_keys_.get();
    LOG(INFO) << "authentication on: " << g->api_keys_->size() << " API key(s) from " << options.api_keys_file;
  }
  ASSIGN_OR_RETURN(g->tokenizer_, tokenizer::Tokenizer::FromDirectory(options.model_dir));
  RouterPoolOptions po;
  po.addresses = options.router_addresses;
  po.tls = options.tls;
  Gateway* self = g.get();
  po.on_available_change = [self](bool available) {
    {
      absl::MutexLock lock(&self->health_mu_);
      self->routers_available_ = available;
    }
    self->UpdateServing();
  };
  g->routers_ = std::make_unique<RouterPool>(po);
  ASSIGN_OR_RETURN(moe::v1::ModelInfo info, g->routers_->FetchModelInfo(options.connect_deadline_ms));
  if (g->tokenizer_->vocab_size() > info.vocab_size()) {
    return absl::FailedPreconditionError(absl::StrCat("the tokenizer in ", options.model_dir, " has ",
                                                      g->tokenizer_->vocab_size(), " tokens, the model only ",
                                                      info.vocab_size()));
  }
  g->service_ = std::make_unique<GatewayService>(g->tokenizer_.get(), g->routers_.get(), info, service_options);
  rpc::ServerOptions so;
  so.listen_address = options.listen_address;
  so.address_file = options.address_file;
  so.enable_reflection = true;
  so.health_services = {moe::v1::Inference::service_full_name()};
  if (!options.tls_client_ca_file.empty() && !options.tls.has_identity()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  rpc::TlsConfig public_tls = options.tls;
  public_tls.ca_pem.clear();
  public_tls.files.ca_file = options.tls_client_ca_file;
  if (!options.tls_client_ca_file.empty()) {
    rpc::TlsFiles f;
    f.ca_file = options.tls_client_ca_file;
    ASSIGN_OR_RETURN(rpc::TlsConfig client_ca, rpc::LoadTls(f, rpc::TlsRole::kClient));  // checked like the others
    public_tls.ca_pem = client_ca.ca_pem;
  }
  so.credentials = rpc::ServerCredentials(public_tls, /*verify_clients=*/!options.tls_client_ca_file.empty());
  ASSIGN_OR_RETURN(g->server_, rpc::RunningServer::Start(so, {g->service_.get()}));
  if (!options.http_listen_address.empty()) {
    HttpApiBackend backend;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(rpc::kMaxMessageBytes);
    args.SetMaxSendMessageSize(rpc::kMaxMessageBytes);
    backend.gateway_channel = g->server_->server()->InProcessChannel(args);
    backend.tokenizer = g->tokenizer_.get();
    backend.model_info = info;
    // A model without a usable template still serves completions; chat
    // requests then fail with the reason.
    backend.chat_template = chat::LoadChatTemplate(options.model_dir);
    if (!backend.chat_template.ok()) {
      LOG(WARNING) << "no chat template: /v1/chat/completions will fail: " << backend.chat_template.status();
    }
    backend.api_keys = g->api_keys_.get();
    backend.routers = g->routers_.get();
    backend.accepting = [self] {
      absl::MutexLock lock(&self->health_mu_);
      return !self->draining_;
    };
    GatewayService* service = g->service_.get();
    backend.render_metrics = [service] { return service->metrics().Render(); };
    HttpServerOptions http_options = options.http;
    http_options.listen_address = options.http_listen_address;
    if (options.tls.has_identity()) {
      http_options.tls_cert_file = options.tls.files.cert_file;
      http_options.tls_key_file = options.tls.files.key_file;
      http_options.tls_client_ca_file = options.tls_client_ca_file;
      http_options.tls_reload_interval_s = static_cast<int>(options.tls.files.reload_interval_s);
    }
    ASSIGN_OR_RETURN(g->http_, HttpServer::Start(http_options, std::move(backend)));
  }
  {
    absl::MutexLock lock(&g->health_mu_);
    g->serving_server_ = g->server_.get();
    // The model info came from a router: it answered just now.
    g->routers_available_ = g->routers_available_ || g->routers_->AnyServing();
  }
  g->UpdateServing();
  LOG(INFO) << "gateway serving " << info.model_id() << " on " << g->server_->address() << " via "
            << options.router_addresses.size() << " router(s)";
  return g;
}

Gateway::~Gateway() { Shutdown(); }

void Gateway::UpdateServing() {
  absl::MutexLock lock(&health_mu_);
  if (serving_server_ != nullptr) serving_server_->SetServing(!draining_ && routers_available_);
}

void Gateway::Drain(int64_t timeout_ms) {
  {
    absl::MutexLock lock(&health_mu_);
    draining_ = true;
  }
  UpdateServing();
  service_->StopAccepting();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  LOG(INFO) << "draining: " << service_->ActiveCalls() << " call(s) open, waiting up to " << timeout_ms << " ms";
  while (service_->ActiveCalls() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int left = service_->ActiveCalls();
  if (left > 0) {
    LOG(WARNING) << "drain timeout: " << left << " call(s) still open are ended (UNAVAILABLE)";
  } else {
    LOG(INFO) << "drained: every call finished";
  }
}

void Gateway::Shutdown() {
  {
    absl::MutexLock lock(&health_mu_);
    draining_ = true;
    if (serving_server_ != nullptr) serving_server_->SetServing(false);
    serving_server_ = nullptr;
  }
  // New HTTP connections stop first; the gRPC shutdown then cancels the calls
  // that open HTTP requests wait on, so their handlers return and Join ends
  // (the in-process channel is never used after its server is gone).
  if (http_ != nullptr) http_->StopAccepting();
  if (server_ != nullptr) server_->Shutdown();
  if (http_ != nullptr) {
    http_->Join();
    http_.reset();
  }
  server_.reset();
}

}  // namespace moe
