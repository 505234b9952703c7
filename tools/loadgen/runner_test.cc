#include "tools/loadgen/runner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <deque>
#include <limits>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe::loadgen {
namespace {

// Answers every request after `latency` on its own thread, with one token
// event per output token; records the most requests in flight.
class FakeBackend : public Backend {
 public:
  explicit FakeBackend(std::chrono::milliseconds latency) : latency_(latency), thread_([this] { Loop(); }) {}
  ~FakeBackend() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  void Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) override {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    ++started_;
    if (spec.warmup) ++warmup_started_;
    Pending p{spec, origin, Clock::now(), std::move(done)};
    queue_.push_back(std::move(p));
  }
  std::string Describe() const override { return "fake"; }

  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }
  int started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  int warmup_started() {
    absl::MutexLock lock(&mu_);
    return warmup_started_;
  }
  int in_flight() {
    absl::MutexLock lock(&mu_);
    return in_flight_;
  }

 private:
  struct Pending {
    RequestSpec spec;
    Clock::time_point origin, sent;
    DoneCallback done;
  };

  void Loop() {
    for (;;) {
      std::vector<Pending> due;
      {
        absl::MutexLock lock(&mu_);
        if (stop_ && queue_.empty()) return;
        const Clock::time_point now = Clock::now();
        while (!queue_.empty() && queue_.front().sent + latency_ <= now) {
          due.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      for (Pending& p : due) {
        RequestRecord r;
        r.index = p.spec.index;
        r.warmup = p.spec.warmup;
        r.scheduled_s = p.spec.scheduled_s;
        r.sent_s = SecondsSince(p.origin, p.sent);
        r.done_s = SecondsSince(p.origin, Clock::now());
        r.first_token_s = r.done_s;
        r.ok = true;
        r.output_tokens = p.spec.max_tokens;
        r.events.push_back({r.done_s, p.spec.max_tokens});
        {
          absl::MutexLock lock(&mu_);
          --in_flight_;
        }
        p.done(std::move(r));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  const std::chrono::milliseconds latency_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int warmup_started_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

Workload MakeWorkload() {
  WorkloadOptions o;
  o.input_len_tokens = 4;
  o.output_len_tokens = 2;
  o.vocab_size = 100;
  auto w = Workload::Create(o);
  return std::move(*w);
}

int Measured(const RunResult& r) {
  return static_cast<int>(std::count_if(r.records.begin(), r.records.end(), [](const RequestRecord& x) {
    return !x.warmup;
  }));
}

TEST(RunnerTest, ClosedLoopKeepsConcurrencyClientsBusy) {
  FakeBackend backend(std::chrono::milliseconds(5));
  Workload workload = MakeWorkload();
  RunOptions o;
  o.concurrency = 3;
  o.num_requests = 30;
  const RunResult r = Runner(&backend, &workload, o).Run();
  EXPECT_EQ(Measured(r), 30);
  EXPECT_EQ(backend.max_in_flight(), 3);
  EXPECT_EQ(backend.in_flight(), 0);
  EXPECT_EQ(r.traffic, "closed loop, 3 clients");
  std::vector<int64_t> indices;
  for (const RequestRecord& x : r.records) indices.push_back(x.index);
  std::sort(indices.begin(), indices.end());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(indices[i], i);
}

TEST(RunnerTest, WarmupFinishesBeforeTheMeasuredPhase) {
  FakeBackend backend(std::chrono::milliseconds(2));
  Workload workload = MakeWorkload();
  RunOptions o;
  o.concurrency = 2;
  o.num_requests = 6;
  o.warmup_requests = 5;
  int started_at_hook = -1, in_flight_at_hook = -1, after_calls = 0;
  o.before_measured = [&] {
    started_at_hook = backend.started();
    in_flight_at_hook = backend.in_flight();
  };
  o.after_measured = [&] { after_calls += backend.in_flight() == 0 ? 1 : 100; };
  const RunResult r = Runner(&backend, &workload, o).Run();
  EXPECT_EQ(started_at_hook, 5);
  EXPECT_EQ(in_flight_at_hook, 0);
  EXPECT_EQ(after_calls, 1);
  EXPECT_EQ(backend.warmup_started(), 5);
  EXPECT_EQ(Measured(r), 6);
  EXPECT_EQ(r.records.size(), 11u);
  EXPECT_EQ(r.warmup_failed, 0);
}

TEST(RunnerTest, OpenLoopFollowsTheRateForTheDuration) {
  FakeBackend backend(std::chrono::milliseconds(1));
  Workload workload = MakeWorkload();
  RunOptions o;
  o.request_rate_per_s = 200;
  o.duration_s = 1.0;
  o.seed = 5;
  const auto start = Clock::now();
  const RunResult r = Runner(&backend, &workload, o).Run();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(wall, 0.9);
  EXPECT_LT(wall, 3.0);
  // 200 expected; Poisson's standard deviation is 14.
  EXPECT_GT(Measured(r), 140);
  EXPECT_LT(Measured(r), 260);
  EXPECT_EQ(r.traffic, "Poisson, 200.00 req/s");
  // Requests go out at their planned times (within scheduling noise).
  for (const RequestRecord& x : r.records) EXPECT_NEAR(x.sent_s, x.scheduled_s, 0.1);
}

TEST(RunnerTest, OpenLoopRespectsTheConcurrencyCap) {
  FakeBackend backend(std::chrono::milliseconds(10));
  Workload workload = MakeWorkload();
  RunOptions o;
  o.request_rate_per_s = std::numeric_limits<double>::infinity();
  o.concurrency = 2;
  o.num_requests = 10;
  const RunResult r = Runner(&backend, &workload, o).Run();
  EXPECT_EQ(Measured(r), 10);
  EXPECT_EQ(backend.max_in_flight(), 2);
  EXPECT_EQ(r.traffic, "all at once, at most 2 in flight");
}

TEST(RunnerTest, DurationStopsAClosedLoopAndDrains) {
  FakeBackend backend(std::chrono::milliseconds(20));
  Workload workload = MakeWorkload();
  RunOptions o;
  o.concurrency = 4;
  o.duration_s = 0.3;
  const RunResult r = Runner(&backend, &workload, o).Run();
  // About 0.3 s / 20 ms * 4 = 60 requests, all finished.
  EXPECT_GT(Measured(r), 20);
  EXPECT_LT(Measured(r), 80);
  EXPECT_EQ(backend.in_flight(), 0);
  for (const RequestRecord& x : r.records) EXPECT_LT(x.sent_s, 0.3 + 0.05);
}

TEST(RunnerTest, DrawsProgressOnTheGivenStream) {
  FakeBackend backend(std::chrono::milliseconds(30));
  Workload workload = MakeWorkload();
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  RunOptions o;
  o.concurrency = 1;
  o.num_requests = 8;
  o.progress = out;
  Runner(&backend, &workload, o).Run();
  std::fclose(out);
  const std::string text(buffer, size);
  free(buffer);
  EXPECT_THAT(text, testing::HasSubstr("100% | 8 done/8 | 0 failed"));
  EXPECT_THAT(text, testing::HasSubstr("\r["));
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace moe::loadgen
