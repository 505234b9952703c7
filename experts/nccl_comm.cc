#include "experts/nccl_comm.h"

#include <dlfcn.h>

#include <cstring>
#include <thread>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "experts/cuda_runtime.h"
#include "experts/nccl_bootstrap.h"

namespace moe::nccl {

const NcclApi& LoadNccl() {
  static const NcclApi* api = [] {
    auto* n = new NcclApi();
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      n->error = absl::StrCat("cannot load NCCL (libnccl.so.2): ", dlerror());
      return n;
    }
    auto sym = [&](const char* name, auto* fn) {
      *fn = reinterpret_cast<std::remove_reference_t<decltype(*fn)>>(dlsym(lib, name));
      if (*fn == nullptr && n->error.empty()) n->error = absl::StrCat("libnccl.so.2 has no ", name);
    };
    sym("ncclGetUniqueId", &n->get_unique_id);
    sym("ncclCommInitRankConfig", &n->init_rank_config);
    sym("ncclCommGetAsyncError", &n->get_async_error);
    sym("ncclCommAbort", &n->abort);
    sym("ncclCommDestroy", &n->destroy);
    sym("ncclSend", &n->send);
    sym("ncclRecv", &n->recv);
    sym("ncclGroupStart", &n->group_start);
    sym("ncclGroupEnd", &n->group_end);
    sym("ncclGetErrorString", &n->error_string);
    return n;
  }();
  return *api;
}

absl::Status NcclError(const char* call, ncclResult_t r) {
  return absl::UnavailableError(absl::StrCat(call, ": ", LoadNccl().error_string(r)));
}

absl::Status NcclChecked(const char* call, ncclResult_t r) {
  return r == ncclSuccess || r == ncclInProgress ? absl::OkStatus() : NcclError(call, r);
}

absl::StatusOr<std::string> MakeUniqueId() {
  const NcclApi& api = LoadNccl();
  if (!api.error.empty()) return absl::FailedPreconditionError(api.error);
  ncclUniqueId id;
  if (ncclResult_t r = api.get_unique_id(&id); r != ncclSuccess) return NcclError("ncclGetUniqueId", r);
  static_assert(sizeof(id.internal) == kUniqueIdBytes);
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<std::unique_ptr<Comm>> Comm::Join(const std::string& unique_id, int rank, int nranks,
                                                 uint64_t generation, int ordinal, absl::Duration timeout) {
  const NcclApi& api = LoadNccl();
  if (!api.error.empty()) return absl::FailedPreconditionError(api.error);
  if (static_cast<int64_t>(unique_id.size()) != kUniqueIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL unique id of ", unique_id.size(), " bytes"));
  }
  MOE_CUDA_CHECK(cudaSetDevice(ordinal));
  auto c = std::unique_ptr<Comm>(new Comm(rank, nranks, generation, ordinal));
  MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream_, cudaStreamNonBlocking));
  ncclUniqueId id;
  std::memcpy(id.internal, unique_id.data(), sizeof(id.internal));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // init and every call return at once; progress is polled
  ncclResult_t r = api.init_rank_config(&c->comm_, nranks, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    c->comm_ = nullptr;
    return NcclError("ncclCommInitRankConfig", r);
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    ncclResult_t state = ncclInProgress;
    if (ncclResult_t e = api.get_async_error(c->comm_, &state); e != ncclSuccess) state = e;
    if (state == ncclSuccess) return c;
    if (state != ncclInProgress) return NcclError("ncclCommInitRankConfig (joining)", state);
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("NCCL communicator generation ", generation, ": rank ", rank, " of ",
                                                 nranks, " did not see every rank join within ",
                                                 absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

Comm::~Comm() {
  Abort();
  if (stream_ != nullptr) {
    cudaSetDevice(ordinal_);
    cudaStreamDestroy(stream_);
  }
}

void Comm::Abort() {
  if (comm_ == nullptr || aborted_.exchange(true)) return;
  // ncclCommAbort ends pending kernels and frees the communicator without
  // waiting for any peer.
  LoadNccl().abort(comm_);
}

ncclResult_t Comm::AsyncError() const {
  if (aborted_.load()) return ncclInvalidUsage;
  ncclResult_t state = ncclSuccess;
  if (ncclResult_t e = LoadNccl().get_async_error(comm_, &state); e != ncclSuccess) return e;
  return state;
}

absl::Status Comm::WaitIssued(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const ncclResult_t state = AsyncError();
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return NcclError("NCCL group", state);
    if (absl::Now() >= deadline) return absl::UnavailableError("NCCL group: still being issued at the deadline");
    std::this_thread::yield();
  }
}

}  // namespace moe::nccl
