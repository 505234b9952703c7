// MetricsServer: a small HTTP listener (cpp-httplib) that serves GET /metrics
// in the Prometheus text format, for processes without an HTTP API of their
// own (the router). Rendering happens on the listener's thread.
#ifndef MOE_CORE_METRICS_SERVER_H_
#define MOE_CORE_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace moe {

class MetricsServer {
 public:
  // `listen_address` is "HOST:PORT" (port 0: chosen by the OS); the bound
  // address is written to `address_file` when set.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen_address,
                                                             std::function<std::string()> render,
                                                             const std::string& address_file = "");
  ~MetricsServer();
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace moe

#endif  // MOE_CORE_METRICS_SERVER_H_
