#include "deploy/local/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/cpu_affinity.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string SelfDirectory() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

void LocalCluster::AddCommonFlags(std::vector<std::string>* argv) const {
  // Before the caller's extra flags, which may override it (the last wins).
  argv->insert(argv->begin() + 1, absl::StrCat("--drain-timeout-s=", options_.drain_timeout_s));
  const rpc::TlsFiles& t = options_.tls;
  if (!t.cert_file.empty()) argv->push_back("--tls-cert=" + t.cert_file);
  if (!t.key_file.empty()) argv->push_back("--tls-key=" + t.key_file);
  if (!t.ca_file.empty()) argv->push_back("--tls-ca=" + t.ca_file);
  if (!t.server_name.empty()) argv->push_back("--tls-server-name=" + t.server_name);
}

absl::StatusOr<std::string> LocalCluster::StartAndWait(const std::string& name, std::vector<std::string> argv) {
  const std::string addr_file = absl::StrCat(run_dir_, "/", name, ".addr");
  const std::string log = absl::StrCat(run_dir_, "/", name, ".log");
  std::filesystem::remove(addr_file);
  argv.push_back("--address-file=" + addr_file);
  AddCommonFlags(&argv);
  auto pid = processes_.Spawn(name, argv, log);
  if (!pid.ok()) return pid.status();
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.startup_timeout_ms);
  std::string address;
  while (std::chrono::steady_clock::now() < end) {
    for (const auto& c : processes_.Reap()) {
      return absl::UnavailableError(absl::StrCat(c.name, " exited (", DescribeExit(c.status),
                                                 ") during start-up; see ", run_dir_, "/", c.name, ".log"));
    }
    if (address.empty() && std::filesystem::exists(addr_file)) address = ReadFirstLine(addr_file);
    if (!address.empty() && rpc::IsServing(address, 500, &tls_)) return address;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(name, " did not report SERVING within ",
                                                  options_.startup_timeout_ms, " ms; see ", log));
}

absl::Status LocalCluster::Up() {
  if (options_.num_workers < 0) return absl::InvalidArgumentError("workers: must be >= 0");
  if (options_.replicas < 1) return absl::InvalidArgumentError("replicas: must be >= 1");
  // Checked here first: the same files go to every process, which would
  // otherwise each fail with the same message.
  auto tls = rpc::LoadTls(options_.tls, rpc::TlsRole::kServer);
  if (!tls.ok()) return tls.status();
  tls_ = *std::move(tls);
  run_dir_ = options_.run_dir;
  if (run_dir_.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moe-cluster.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("cannot create a temporary directory");
    run_dir_ = tmpl;
  } else {
    std::filesystem::create_directories(run_dir_);
  }
  const std::string bin = options_.bin_dir.empty() ? SelfDirectory() : options_.bin_dir;
  auto fail = [&](const absl::Status& s) {
    Stop();
    return s;
  };
  const std::vector<int> cpus = AllowedCpus();
  std::vector<std::string> specs = options_.worker_specs;
  if (specs.empty()) {
    for (int k = 0; k < options_.num_workers * options_.replicas; ++k) {
      specs.push_back(absl::StrCat("mod:", k % options_.num_workers, "/", options_.num_workers));
    }
  }
  for (int k = 0; k < static_cast<int>(specs.size()); ++k) {
    std::vector<std::string> argv = {bin + "/moe-expert-worker", "--model=" + options_.model_dir,
                                     "--experts=" + specs[k], absl::StrCat("--threads=", options_.worker_threads)};
    if (!options_.worker_devices.empty()) {
      argv.push_back("--device=" + options_.worker_devices[k % options_.worker_devices.size()]);
    }
    if (options_.place_workers && !cpus.empty()) {
      argv.push_back(absl::StrCat("--cpus=", cpus[k % cpus.size()]));
      argv.push_back("--batch-scheduling");
    }
    std::vector<std::string> first = argv;
    first.push_back("--listen=127.0.0.1:0");
    const std::string name = absl::StrCat("worker-", k);
    auto addr = StartAndWait(name, first);
    if (!addr.ok()) return fail(addr.status());
    worker_addresses_.push_back(*addr);
    // A restart comes back on the same address: the router knows it by that.
    argv.push_back("--listen=" + *addr);
    workers_.push_back(WorkerProcess{name, argv, std::chrono::steady_clock::now(), {}, false,
                                     std::chrono::milliseconds(100)});
  }
  std::vector<std::string> router_argv = {
      bin + "/moe-router", "--model=" + options_.model_dir,
      "--workers=" + (worker_addresses_.empty() ? std::string("local") : absl::StrJoin(worker_addresses_, ",")),
      "--listen=127.0.0.1:0", absl::StrCat("--threads=", options_.router_threads),
      "--device=" + options_.router_device};
  router_argv.insert(router_argv.end(), options_.extra_router_flags.begin(), options_.extra_router_flags.end());
  auto router = StartAndWait("router", router_argv);
  if (!router.ok()) return fail(router.status());
  router_address_ = *router;
  std::vector<std::string> gateway_argv = {bin + "/moe-gateway", "--model=" + options_.model_dir,
                                           "--routers=" + router_address_,
                                           absl::StrCat("--listen=127.0.0.1:", options_.gateway_port)};
  const std::string http_addr_file = absl::StrCat(run_dir_, "/gateway.http.addr");
  if (options_.http_port >= 0) {
    std::filesystem::remove(http_addr_file);
    gateway_argv.push_back(absl::StrCat("--http-listen=127.0.0.1:", options_.http_port));
    gateway_argv.push_back("--http-address-file=" + http_addr_file);
  }
  gateway_argv.insert(gateway_argv.end(), options_.extra_gateway_flags.begin(), options_.extra_gateway_flags.end());
  auto gateway = StartAndWait("gateway", gateway_argv);
  if (!gateway.ok()) return fail(gateway.status());
  gateway_address_ = *gateway;
  if (options_.http_port >= 0) {
    // The gateway writes it before it reports SERVING.
    gateway_http_address_ = ReadFirstLine(http_addr_file);
    if (gateway_http_address_.empty()) {
      return fail(absl::InternalError(absl::StrCat("gateway serves but wrote no HTTP address to ", http_addr_file)));
    }
  }
  return absl::OkStatus();
}

void LocalCluster::Stop() {
  processes_.StopAll(std::chrono::seconds(options_.drain_timeout_s) + std::chrono::seconds(3));
}

absl::StatusOr<std::vector<std::string>> LocalCluster::Supervise() {
  using Clock = std::chrono::steady_clock;
  std::vector<std::string> report;
  const Clock::time_point now = Clock::now();
  for (const ProcessGroup::Child& c : processes_.Reap()) {
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const WorkerProcess& w) { return w.name == c.name; });
    if (it == workers_.end()) {
      return absl::UnavailableError(absl::StrCat(c.name, " exited (", DescribeExit(c.status), "); see ", run_dir_,
                                                 "/", c.name, ".log"));
    }
    if (now - it->started > std::chrono::seconds(10)) it->backoff = std::chrono::milliseconds(100);
    it->pending_restart = true;
    it->restart_at = now + it->backoff;
    report.push_back(absl::StrCat(c.name, " exited (", DescribeExit(c.status), "); restarting in ",
                                  it->backoff.count(), " ms"));
    it->backoff = std::min(it->backoff * 2, std::chrono::milliseconds(5000));
  }
  for (WorkerProcess& w : workers_) {
    if (!w.pending_restart || now < w.restart_at) continue;
    w.pending_restart = false;
    std::vector<std::string> argv = w.argv;
    AddCommonFlags(&argv);
    // Appended to its log: what it said before dying stays readable.
    auto pid = processes_.Spawn(w.name, argv, absl::StrCat(run_dir_, "/", w.name, ".log"));
    if (!pid.ok()) {
      report.push_back(absl::StrCat(w.name, ": cannot restart: ", pid.status().message()));
      w.pending_restart = true;
      w.restart_at = now + w.backoff;
      continue;
    }
    w.started = now;
    ++restarts_;
    report.push_back(absl::StrCat(w.name, " restarted (pid ", *pid, ")"));
  }
  return report;
}

}  // namespace moe
