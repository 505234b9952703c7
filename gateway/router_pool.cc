#include "gateway/router_pool.h"

#include <chrono>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "proto/rpc_util.h"

namespace moe {

RouterPool::RouterPool(const RouterPoolOptions& options) : options_(options) {
  for (const std::string& a : options.addresses) {
    auto r = std::make_unique<Router>();
    r->address = a;
    r->stub = moe::internal::v1::Router::NewStub(rpc::MakeChannel(a, &options.tls));
    routers_.push_back(std::move(r));
  }
  poller_ = std::thread([this] { PollLoop(); });
}

RouterPool::~RouterPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  poller_.join();
}

absl::StatusOr<moe::v1::ModelInfo> RouterPool::FetchModelInfo(int64_t deadline_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  std::vector<std::string> errors;
  do {
    errors.clear();
    for (auto& r : routers_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(rpc::DeadlineIn(options_.rpc_deadline_ms));
      ctx.set_wait_for_ready(true);
      moe::internal::v1::RouterInfo info;
      const grpc::Status s = r->stub->GetInfo(&ctx, moe::internal::v1::GetRouterInfoRequest(), &info);
      if (s.ok()) return info.model();
      errors.push_back(absl::StrCat(r->address, ": ", s.error_message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < end);
  return absl::UnavailableError(absl::StrCat("no router answered: ", absl::StrJoin(errors, "; ")));
}

RouterPool::Router* RouterPool::Pick() {
  Router* best = nullptr;
  int best_load = 0;
  for (int pass = 0; pass < 2 && best == nullptr; ++pass) {
    for (auto& r : routers_) {
      if (pass == 0 && !(r->reachable.load() && r->serving.load())) continue;  // second pass: try anyway
      const int load = r->reported.load() + r->in_flight.load();
      if (best == nullptr || load < best_load) {
        best = r.get();
        best_load = load;
      }
    }
  }
  best->in_flight.fetch_add(1);
  return best;
}

bool RouterPool::AnyServing() const {
  for (const auto& r : routers_) {
    if (r->reachable.load() && r->serving.load()) return true;
  }
  return false;
}

void RouterPool::PollLoop() {
  bool first = true;
  for (;;) {
    for (auto& r : routers_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(rpc::DeadlineIn(options_.rpc_deadline_ms));
      moe::internal::v1::LoadReport load;
      const grpc::Status s = r->stub->GetLoad(&ctx, moe::internal::v1::GetLoadRequest(), &load);
      if (s.ok()) {
        // Requests this gateway opened are in the report too once admitted;
        // count them once.
        const int reported = static_cast<int>(load.running_requests() + load.waiting_requests());
        r->reported = std::max(0, reported - r->in_flight.load());
        r->reachable = true;
        r->serving = load.serving();
      } else {
        r->reachable = false;
      }
    }
    const bool available = AnyServing();
    if (available != available_ || first) {
      available_ = available;
      first = false;
      if (options_.on_available_change) options_.on_available_change(available);
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(options_.load_poll_interval_ms))) return;
  }
}

}  // namespace moe
