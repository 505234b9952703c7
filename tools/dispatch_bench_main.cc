// moe-dispatch-bench: round-trip time of one MoE layer's dispatch to an expert
// worker: a unary RunExperts call (one per layer), and
// RemoteExpertBackend::Compute end to end (gather, call, scatter). "empty" is
// a 0-row call, answered inside the worker's reaction: the transport alone.
// "compute" is the expert FFNs alone.
//
//   moe-dispatch-bench --model DIR [--rows 1,32] [--iterations 2000] [--worker ADDR]
//
// Without --worker a worker holding every expert is started in this process
// on 127.0.0.1:0 (the same code path as moe-expert-worker, over loopback TCP).
//
// With --device cuda:N the worker's experts and "compute" run on that GPU,
// and a fifth path, "nccl", is the NCCL transport with one rank (the router
// sending to itself, router/cuda/nccl_experts.h) around the same runner: a
// lower bound of NCCL's own overhead, since no second process is involved.
// Rows start and end in host memory on every path.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/checkpoint.h"
#include "core/command_line.h"
#include "expert_worker/worker_server.h"
#include "moe/internal/v1/expert_worker.grpc.pb.h"
#include "proto/rpc_util.h"
#include "experts/expert_shard.h"
#include "experts/cuda_expert_runner.h"
#include "experts/local_expert_backend.h"
#include "router/cuda/nccl_experts.h"
#include "router/remote_experts.h"

ABSL_FLAG(std::string, model, "", "Model directory (Hugging Face layout). Required.");
ABSL_FLAG(std::string, rows, "1,32", "Comma-separated row counts per layer request.");
ABSL_FLAG(int, iterations, 2000, "Measured round trips per path and row count.");
ABSL_FLAG(int, warmup, 200, "Unmeasured round trips first.");
ABSL_FLAG(std::string, worker, "", "Measure this running worker (HOST:PORT) instead; it must hold every expert.");
ABSL_FLAG(int, threads, 1, "In-process worker: kernel threads, counting its compute thread.");
ABSL_FLAG(std::string, device, "cpu", "Where the in-process worker's experts run: cpu or cuda:N (adds the nccl path).");

namespace {

namespace pb = ::moe::internal::v1;
using Clock = std::chrono::steady_clock;

// CPU time used so far by every thread of this process (client, worker and
// gRPC threads alike), microseconds.
double ProcessCpuUs() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  auto us = [](const timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; };
  return us(u.ru_utime) + us(u.ru_stime);
}

int Fail(const std::string& msg) {
  std::cerr << "moe-dispatch-bench: " << msg << "\n";
  return 1;
}

struct Summary {
  double p50_us, p99_us, mean_us;
};

Summary Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  return {at(0.50), at(0.99), sum / us.size()};
}

// Waits for one event signalled from a gRPC callback thread.
class Latch {
 public:
  void Reset() {
    absl::MutexLock lock(&mu_);
    done_ = false;
  }
  void Signal() {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  absl::Mutex mu_;
  bool done_ = false;
};

// Unary: one callback RunExperts per layer.
absl::StatusOr<double> UnaryRoundTrip(pb::ExpertWorker::Stub* stub, const pb::ExpertRequest& request) {
  grpc::ClientContext ctx;
  ctx.set_deadline(moe::rpc::DeadlineIn(5000));
  pb::ExpertResponse response;
  grpc::Status status;
  Latch latch;
  const auto t0 = Clock::now();
  stub->async()->RunExperts(&ctx, &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    latch.Signal();
  });
  latch.Wait();
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (!status.ok()) return moe::rpc::FromGrpcStatus(status);
  if (response.outputs().size() != request.rows().size()) return absl::InternalError("short reply");
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("moe-dispatch-bench --model DIR [--rows 1,32] [--iterations N] [--worker ADDR]");
  moe::NormalizedArgs args(argc, argv);
  absl::ParseCommandLine(args.argc(), args.argv());
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) return Fail("--model is required");
  std::vector<int> row_counts;
  for (absl::string_view item : absl::StrSplit(absl::GetFlag(FLAGS_rows), ',', absl::SkipWhitespace())) {
    int n = 0;
    if (!absl::SimpleAtoi(item, &n) || n < 1 || n > 65536) return Fail("--rows: bad row count '" + std::string(item) + "'");
    row_counts.push_back(n);
  }
  const int iterations = absl::GetFlag(FLAGS_iterations), warmup = absl::GetFlag(FLAGS_warmup);
  if (row_counts.empty() || iterations < 1 || warmup < 0) return Fail("--rows, --iterations and --warmup must be positive");

  auto checkpoint = moe::Checkpoint::Open(dir);
  if (!checkpoint.ok()) return Fail(std::string(checkpoint.status().message()));
  const moe::ModelConfig& cfg = (*checkpoint)->config();
  std::unique_ptr<moe::ExpertWorkerServer> local;
  std::string address = absl::GetFlag(FLAGS_worker);
  auto device = moe::ParseExpertDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return Fail("--device: " + std::string(device.status().message()));
  if (address.empty()) {
    moe::ExpertWorkerOptions options;
    options.compute_threads = absl::GetFlag(FLAGS_threads);
    options.device = device->ToString();
    auto worker = moe::ExpertWorkerServer::Start(**checkpoint, {}, options);
    if (!worker.ok()) return Fail(std::string(worker.status().message()));
    local = std::move(*worker);
    address = local->address();
  }
  auto channel = moe::rpc::MakeChannel(address);
  auto stub = pb::ExpertWorker::NewStub(channel);
  moe::RemoteExpertsOptions remote_options;
  remote_options.worker_addresses = {address};
  auto remote_unary = moe::RemoteExpertBackend::Connect(cfg, remote_options);
  if (!remote_unary.ok()) return Fail(std::string(remote_unary.status().message()));

  // The expert FFNs alone, in this thread, for comparison.
  auto shard = moe::ExpertShard::Load(**checkpoint, {});
  if (!shard.ok()) return Fail(std::string(shard.status().message()));
  moe::ThreadPool pool(absl::GetFlag(FLAGS_threads));
  std::unique_ptr<moe::ExpertRunner> gpu_runner;
  std::unique_ptr<moe::LocalExpertBackend> in_process_backend;
  std::unique_ptr<moe::ExpertBackend> nccl;
  if (device->cuda) {
    auto r = moe::MakeCudaExpertRunner(std::move(*shard), device->ordinal);
    if (!r.ok()) return Fail(std::string(r.status().message()));
    gpu_runner = std::move(*r);
    in_process_backend = std::make_unique<moe::LocalExpertBackend>(gpu_runner.get());
    moe::NcclExpertsOptions no;
    no.local_runner = gpu_runner.get();
    no.ordinal = device->ordinal;
    auto n = moe::MakeNcclExpertBackend(cfg, no);
    if (!n.ok()) return Fail(std::string(n.status().message()));
    nccl = std::move(*n);
  } else {
    in_process_backend = std::make_unique<moe::LocalExpertBackend>(shard->get(), &pool);
  }
  moe::LocalExpertBackend& in_process = *in_process_backend;

  std::printf("device %s, worker %s%s, model %s (hidden %lld, ffn %lld), %d iterations after %d warm-up\n",
              device->ToString().c_str(), address.c_str(),
              local ? " (in process)" : "", dir.c_str(), static_cast<long long>(cfg.hidden_size),
              static_cast<long long>(cfg.intermediate_size), iterations, warmup);
  // cpu_us: CPU time of the whole process (both ends) per round trip.
  std::printf("%-10s %6s %10s %10s %10s %10s\n", "path", "rows", "p50_us", "p99_us", "mean_us", "cpu_us");
  for (int rows : row_counts) {
    // A layer-0 request, rows spread over the experts in order.
    pb::ExpertRequest request;
    request.set_layer(0);
    request.set_dtype(pb::ACTIVATION_DTYPE_F32);
    request.set_num_rows(rows);
    request.set_hidden_size(cfg.hidden_size);
    std::vector<float> x(rows * cfg.hidden_size);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) / 13.0f - 0.5f;
    request.set_rows(std::string(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float)));
    for (int r = 0; r < rows; ++r) request.add_expert_ids(r % cfg.num_experts);
    // The same rows as an ExpertBatch of `rows` tokens with top-1.
    std::vector<int32_t> experts(rows);
    for (int r = 0; r < rows; ++r) experts[r] = r % cfg.num_experts;
    std::vector<float> outputs(x.size());
    const moe::ExpertBatch batch{0, rows, 1, cfg.hidden_size, x.data(), experts.data(), nullptr};

    // The paths take turns, one round trip each, so that whatever else the
    // machine does at the time falls on all of them alike.
    struct Path {
      const char* name;
      std::function<absl::StatusOr<double>()> once;
      std::vector<double> us;
      double cpu_us = 0;
    };
    auto timed = [](auto&& fn) -> absl::StatusOr<double> {
      const auto t0 = Clock::now();
      absl::Status s = fn();
      if (!s.ok()) return s;
      return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    };
    pb::ExpertRequest empty = request;  // answered inside the reaction: the transport alone
    empty.set_num_rows(0);
    empty.clear_rows();
    empty.clear_expert_ids();
    std::vector<Path> paths = {
        {"empty", [&] { return UnaryRoundTrip(stub.get(), empty); }, {}},
        {"compute", [&] { return timed([&] { return in_process.Compute(batch, outputs.data()); }); }, {}},
        {"unary", [&] { return UnaryRoundTrip(stub.get(), request); }, {}},
        {"rb-unary", [&] { return timed([&] { return (*remote_unary)->Compute(batch, outputs.data()); }); }, {}},
    };
    if (nccl != nullptr) {
      paths.push_back({"nccl", [&] { return timed([&] { return nccl->Compute(batch, outputs.data()); }); }, {}});
    }
    for (int i = 0; i < warmup + iterations; ++i) {
      for (size_t k = 0; k < paths.size(); ++k) {
        Path& p = paths[(i + k) % paths.size()];
        const double cpu0 = ProcessCpuUs();
        absl::StatusOr<double> t = p.once();
        if (!t.ok()) return Fail(absl::StrCat(p.name, ": ", t.status().ToString()));
        if (i >= warmup) {
          p.us.push_back(*t);
          p.cpu_us += ProcessCpuUs() - cpu0;
        }
      }
    }
    for (const Path& p : paths) {
      const Summary s = Summarize(p.us);
      std::printf("%-10s %6d %10.1f %10.1f %10.1f %10.1f\n", p.name, rows, s.p50_us, s.p99_us, s.mean_us,
                  p.cpu_us / iterations);
    }
  }
  return 0;
}
