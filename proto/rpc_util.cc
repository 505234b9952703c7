#include "proto/rpc_util.h"

#include <signal.h>

#include <fstream>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace moe::rpc {
namespace {

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {
constexpr char kOriginPayloadUrl[] = "type.moe/error-origin";
}  // namespace

absl::Status WithErrorOrigin(absl::Status status, absl::string_view origin) {
  if (!status.ok()) status.SetPayload(kOriginPayloadUrl, absl::Cord(origin));
  return status;
}

std::string ErrorOrigin(const absl::Status& status) {
  const auto payload = status.GetPayload(kOriginPayloadUrl);  // absl::optional<absl::Cord>
  return payload ? std::string(*payload) : std::string();
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::unique_ptr<RunningServer>> RunningServer::Start(
    const ServerOptions& options, const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  if (options.enable_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen_address,
                           options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  for (grpc::Service* s : services) builder.RegisterService(s);
  auto server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen_address));
  }
  auto rs = std::unique_ptr<RunningServer>(new RunningServer());
  rs->server_ = std::move(server);
  const std::string host = options.listen_address.substr(0, options.listen_address.rfind(':'));
  rs->address_ = absl::StrCat(host, ":", port);
  if (auto* health = rs->server_->GetHealthCheckService()) {
    // Registers the names; SetServing(bool) then covers them all.
    for (const std::string& name : options.health_services) health->SetServingStatus(name, false);
  }
  rs->SetServing(false);
  if (!options.address_file.empty()) {
    const std::string tmp = options.address_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << rs->address_ << "\n";
      if (!out) return absl::InternalError(absl::StrCat(options.address_file, ": cannot write"));
    }
    if (std::rename(tmp.c_str(), options.address_file.c_str()) != 0) {
      return absl::InternalError(absl::StrCat(options.address_file, ": cannot write"));
    }
  }
  return rs;
}

RunningServer::~RunningServer() { Shutdown(); }

void RunningServer::SetServing(bool serving) {
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(serving);
}

void RunningServer::Wait() { server_->Wait(); }

void RunningServer::Shutdown(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  SetServing(false);
  server_->Shutdown(std::chrono::system_clock::now() + grace);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const TlsConfig* tls,
                                           int max_reconnect_backoff_ms, bool own_connection) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Come back quickly when a peer restarts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (max_reconnect_backoff_ms > 0) {
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, max_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, max_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_reconnect_backoff_ms);
  }
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  if (tls == nullptr || !tls->enabled) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  if (!tls->files.server_name.empty()) args.SetSslTargetNameOverride(tls->files.server_name);
  return grpc::CreateCustomChannel(address, ChannelCredentials(*tls), args);
}

absl::Status CheckServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(address, tls));
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineIn(timeout_ms));
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat(address, ": ", CodeName(s.error_code()), ": ", s.error_message()));
  }
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        address, " answers ", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())));
  }
  return absl::OkStatus();
}

bool IsServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls) {
  return CheckServing(address, timeout_ms, tls).ok();
}

absl::Status WaitForServing(const std::string& address, int64_t timeout_ms, const TlsConfig* tls) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(address, tls));
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < end) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(500));
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    if (s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) return absl::OkStatus();
    last = s.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()) : s.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(address, " is not SERVING after ", timeout_ms, " ms (", last, ")"));
}

std::chrono::system_clock::time_point DeadlineIn(int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

void IgnoreBrokenPipes() { signal(SIGPIPE, SIG_IGN); }

void BlockTerminationSignals() {
  IgnoreBrokenPipes();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

void ExitOnSecondSignal(const std::string& program) {
  std::thread([program] {
    const int sig = WaitForTerminationSignal();
    LOG(WARNING) << program << ": second signal (" << sig << "): exiting now";
    google::FlushLogFiles(google::GLOG_INFO);
    std::_Exit(1);
  }).detach();
}

}  // namespace moe::rpc
