#include "core/metrics_server.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace moe {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen_address,
                                                                     std::function<std::string()> render,
                                                                     const std::string& address_file) {
  const size_t colon = listen_address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen_address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics listen address '", listen_address, "' is not HOST:PORT"));
  }
  const std::string host = listen_address.substr(0, colon);
  auto m = std::unique_ptr<MetricsServer>(new MetricsServer());
  m->server_ = std::make_unique<httplib::Server>();
  m->server_->Get("/metrics", [render](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  int bound = port == 0 ? m->server_->bind_to_any_port(host) : (m->server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address, " for metrics"));
  m->address_ = absl::StrCat(host, ":", bound);
  httplib::Server* s = m->server_.get();
  m->thread_ = std::thread([s] { s->listen_after_bind(); });
  if (!address_file.empty()) {
    const std::string tmp = address_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << m->address_ << "\n";
    }
    if (std::rename(tmp.c_str(), address_file.c_str()) != 0) {
      return absl::InternalError(absl::StrCat(address_file, ": cannot write"));
    }
  }
  return m;
}

MetricsServer::~MetricsServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace moe
