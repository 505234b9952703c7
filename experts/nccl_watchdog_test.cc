#include "experts/nccl_watchdog.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::nccl {
namespace {

using ::testing::HasSubstr;

// A transport whose exchange completes after `finish_after`, fails then
// (`dies`), or never completes (`stalls`). Like an NCCL kernel waiting for a
// peer, a thread of its own stays blocked until the exchange completes or
// Abort releases it.
class FakeExchange : public Exchange {
 public:
  enum class Mode { kCompletes, kDies, kStalls };
  FakeExchange(Mode mode, absl::Duration finish_after) : mode_(mode), start_(absl::Now()), after_(finish_after) {
    blocked_ = std::thread([this] {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&released_));
    });
  }
  ~FakeExchange() override {
    Release();
    blocked_.join();
  }
  State Poll(absl::Status* error) override {
    if (aborted_.load()) {
      *error = absl::AbortedError("aborted");
      return State::kFailed;
    }
    if (mode_ == Mode::kStalls || absl::Now() - start_ < after_) return State::kRunning;
    if (mode_ == Mode::kDies) {
      *error = absl::InternalError("ncclRemoteError: a peer went away");
      return State::kFailed;
    }
    Release();
    return State::kDone;
  }
  void Abort() override {
    aborted_.store(true);
    Release();
  }
  std::vector<int> PendingWorkers() const override { return {1}; }
  bool thread_released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  bool aborted() const { return aborted_.load(); }

 private:
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  const Mode mode_;
  const absl::Time start_;
  const absl::Duration after_;
  std::atomic<bool> aborted_{false};
  absl::Mutex mu_;
  bool released_ = false;
  std::thread blocked_;
};

WatchdogOptions Options(absl::Duration deadline) {
  WatchdogOptions o;
  o.deadline = deadline;
  o.worker_names = {"10.0.0.1:7001", "10.0.0.2:7001"};
  return o;
}

TEST(NcclWatchdogTest, ACompletedExchangeIsOk) {
  FakeExchange x(FakeExchange::Mode::kCompletes, absl::Milliseconds(5));
  EXPECT_TRUE(WaitForExchange(x, 0, Options(absl::Seconds(2))).ok());
  EXPECT_FALSE(x.aborted());
}

TEST(NcclWatchdogTest, AStalledPeerIsAbortedWithinTheDeadlineAndNoThreadStaysBlocked) {
  for (int i = 0; i < 5; ++i) {
    FakeExchange x(FakeExchange::Mode::kStalls, absl::ZeroDuration());
    const absl::Time t0 = absl::Now();
    const absl::Status st = WaitForExchange(x, 7, Options(absl::Milliseconds(200)));
    const absl::Duration took = absl::Now() - t0;
    EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(st.message(), HasSubstr("layer 7"));
    EXPECT_THAT(st.message(), HasSubstr("10.0.0.2:7001"));
    EXPECT_THAT(st.message(), HasSubstr("dispatch deadline"));
    EXPECT_GE(took, absl::Milliseconds(200));
    EXPECT_LE(took, absl::Milliseconds(300)) << "deadline + 100 ms";
    EXPECT_TRUE(x.aborted());
    EXPECT_TRUE(x.thread_released());
  }
}

TEST(NcclWatchdogTest, ADeadPeerEndsTheWaitAtOnceWithTheTransportsError) {
  FakeExchange x(FakeExchange::Mode::kDies, absl::Milliseconds(20));
  const absl::Time t0 = absl::Now();
  const absl::Status st = WaitForExchange(x, 1, Options(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("ncclRemoteError"));
  EXPECT_TRUE(x.aborted());
  EXPECT_TRUE(x.thread_released());
}

TEST(NcclWatchdogTest, APendingWorkerReportedDownByHealthEndsTheWaitEarly) {
  FakeExchange x(FakeExchange::Mode::kStalls, absl::ZeroDuration());
  WatchdogOptions o = Options(absl::Seconds(10));
  o.worker_up = [](int w) { return w != 1; };
  const absl::Time t0 = absl::Now();
  const absl::Status st = WaitForExchange(x, 2, o);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  EXPECT_THAT(st.message(), HasSubstr("10.0.0.2:7001 is down"));
  EXPECT_TRUE(x.thread_released());
}

class FakeCommunicator : public Communicator {
 public:
  explicit FakeCommunicator(uint64_t generation) : generation_(generation) {}
  uint64_t generation() const override { return generation_; }

 private:
  uint64_t generation_;
};

TEST(NcclWatchdogTest, AfterAnAbortTheNextExchangeGetsARebuiltCommunicator) {
  bool worker_back = true;
  std::vector<uint64_t> built;
  CommunicatorKeeper keeper([&](uint64_t generation) -> absl::StatusOr<std::unique_ptr<Communicator>> {
    if (!worker_back) return absl::UnavailableError("worker 10.0.0.2:7001 did not join");
    built.push_back(generation);
    return std::make_unique<FakeCommunicator>(generation);
  });
  auto comm = keeper.Get();
  ASSERT_TRUE(comm.ok());
  EXPECT_EQ((*comm)->generation(), 1u);
  // An exchange stalls: aborted, the communicator is marked broken.
  {
    FakeExchange x(FakeExchange::Mode::kStalls, absl::ZeroDuration());
    ASSERT_FALSE(WaitForExchange(x, 0, Options(absl::Milliseconds(50))).ok());
    keeper.MarkBroken();
  }
  // While the worker is away, building fails (and is retried on the next use).
  worker_back = false;
  EXPECT_EQ(keeper.Get().status().code(), absl::StatusCode::kUnavailable);
  worker_back = true;
  comm = keeper.Get();
  ASSERT_TRUE(comm.ok());
  EXPECT_EQ((*comm)->generation(), 2u);
  EXPECT_EQ(keeper.builds(), 2u);
  // ... and the next exchange succeeds, no restart.
  FakeExchange next(FakeExchange::Mode::kCompletes, absl::Milliseconds(1));
  EXPECT_TRUE(WaitForExchange(next, 0, Options(absl::Seconds(1))).ok());
  EXPECT_EQ(built, (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace moe::nccl
