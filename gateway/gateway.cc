#include "gateway/gateway.h"

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "glog/logging.h"

namespace moe {

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(const GatewayOptions& options) {
  if (options.router_addresses.empty()) return absl::InvalidArgumentError("routers: at least one address is required");
  auto g = std::unique_ptr<Gateway>(new Gateway());
  ASSIGN_OR_RETURN(g->tokenizer_, tokenizer::Tokenizer::FromDirectory(options.model_dir));
  RouterPoolOptions po;
  po.addresses = options.router_addresses;
  g->routers_ = std::make_unique<RouterPool>(po);
  ASSIGN_OR_RETURN(moe::v1::ModelInfo info, g->routers_->FetchModelInfo(options.connect_deadline_ms));
  if (g->tokenizer_->vocab_size() > info.vocab_size()) {
    return absl::FailedPreconditionError(absl::StrCat("the tokenizer in ", options.model_dir, " has ",
                                                      g->tokenizer_->vocab_size(), " tokens, the model only ",
                                                      info.vocab_size()));
  }
  g->service_ = std::make_unique<GatewayService>(g->tokenizer_.get(), g->routers_.get(), info, options.service);
  rpc::ServerOptions so;
  so.listen_address = options.listen_address;
  so.address_file = options.address_file;
  so.enable_reflection = true;
  ASSIGN_OR_RETURN(g->server_, rpc::RunningServer::Start(so, {g->service_.get()}));
  g->server_->SetServing(true);
  LOG(INFO) << "gateway serving " << info.model_id() << " on " << g->server_->address() << " via "
            << options.router_addresses.size() << " router(s)";
  return g;
}

Gateway::~Gateway() { Shutdown(); }

void Gateway::Shutdown() {
  if (server_ != nullptr) {
    server_->Shutdown();
    server_.reset();
  }
}

}  // namespace moe
