// RouterPool: the gateway's connections to its routers (data-parallel
// replicas) and the choice of the least loaded one for each request.
//
// Load = the router's last reported running + waiting requests (polled with
// GetLoad in the background) + the requests this gateway started on it since.
// Thread-safe.
#ifndef MOE_GATEWAY_ROUTER_POOL_H_
#define MOE_GATEWAY_ROUTER_POOL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "proto/tls.h"

namespace moe {

struct RouterPoolOptions {
  std::vector<std::string> addresses;
  int64_t load_poll_interval_ms = 200;
  int64_t rpc_deadline_ms = 2000;  // GetLoad / GetInfo calls
  rpc::TlsConfig tls;              // to the routers (the gateway's certificate is its client certificate)
  // Called from the poller when "some router can serve" changes (starts
  // false until the first poll). May be empty.
  std::function<void(bool)> on_available_change;
};

class RouterPool {
 public:
  struct Router {
    std::string address;
    std::unique_ptr<moe::internal::v1::Router::Stub> stub;
    std::atomic<int> in_flight{0};    // requests this gateway has open on it
    std::atomic<int> reported{0};     // running + waiting at the last poll
    std::atomic<bool> reachable{true};
    std::atomic<bool> serving{true};  // its last LoadReport said it can serve
  };

  explicit RouterPool(const RouterPoolOptions& options);
  ~RouterPool();

  // Model description from the first router that answers, retried until
  // `deadline_ms`; UNAVAILABLE naming every address otherwise.
  absl::StatusOr<moe::v1::ModelInfo> FetchModelInfo(int64_t deadline_ms);

  // The least loaded router that is reachable and serving (ties: the first;
  // none such: the least loaded of all). Its in_flight count is incremented;
  // call Release when the request ends.
  Router* Pick();
  void Release(Router* router) { router->in_flight.fetch_sub(1); }
  size_t size() const { return routers_.size(); }
  // Some router answered its last poll and said it can serve.
  bool AnyServing() const;
  const std::vector<std::unique_ptr<Router>>& routers() const { return routers_; }

 private:
  void PollLoop();

  RouterPoolOptions options_;
  std::vector<std::unique_ptr<Router>> routers_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool available_ = false;  // poller thread only
  std::thread poller_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_ROUTER_POOL_H_
