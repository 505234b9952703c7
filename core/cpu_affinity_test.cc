#include "core/cpu_affinity.h"

#include <sched.h>

#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CpuListTest, ParsesNumbersAndRangesInAnyOrder) {
  const std::vector<int> allowed = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_THAT(*ParseCpuList("0", allowed), ElementsAre(0));
  EXPECT_THAT(*ParseCpuList("6,0-2", allowed), ElementsAre(0, 1, 2, 6));
  EXPECT_THAT(*ParseCpuList(" 3 - 4 , 7 ", allowed), ElementsAre(3, 4, 7));
  EXPECT_EQ(FormatCpuList({0, 1, 2, 6}), "0-2,6");
  EXPECT_EQ(FormatCpuList({1, 3, 4, 5}), "1,3-5");
  EXPECT_EQ(FormatCpuList({}), "");
}

TEST(CpuListTest, BadListsNameTheItem) {
  const std::vector<int> allowed = {0, 1, 2, 3};
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {"x", "\"x\" is not a CPU number"},
                                         {"1,,2", "\"\" is not a CPU number"},
                                         {"-1", "\"-1\" is not a CPU number"},
                                         {"3-1", "range \"3-1\" ends before it starts"},
                                         {"1-x", "\"1-x\" is not"},
                                         {"9", "CPU 9 is not one this process may use (0-3)"},
                                         {"2-5", "CPU 4 is not one this process may use"},
                                         {"1,0-2", "CPU 1 is listed twice"}}) {
    auto r = ParseCpuList(c.text, allowed);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(CpuAffinityTest, BindingMovesOnlyTheCallingThreadAndNewThreadsInheritIt) {
  const std::vector<int> all = AllowedCpus();
  ASSERT_FALSE(all.empty());
  std::vector<int> in_thread, in_child;
  std::thread t([&] {
    ASSERT_TRUE(BindCurrentThread({all.front()}).ok());
    in_thread = AllowedCpus();
    std::thread child([&] { in_child = AllowedCpus(); });
    child.join();
  });
  t.join();
  EXPECT_THAT(in_thread, ElementsAre(all.front()));
  EXPECT_THAT(in_child, ElementsAre(all.front()));
  EXPECT_EQ(AllowedCpus(), all);  // this thread did not move
  EXPECT_FALSE(BindCurrentThread({}).ok());
}

TEST(CpuAffinityTest, BatchSchedulingAppliesToTheCallingThread) {
  int policy = -1;
  std::thread t([&] {
    ASSERT_TRUE(UseBatchScheduling().ok());
    policy = sched_getscheduler(0);
  });
  t.join();
  EXPECT_EQ(policy, SCHED_BATCH);
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
}

TEST(CpuAffinityTest, PoolHelpersRunOnTheirCpusWhateverTheCreatingThreadHas) {
  const std::vector<int> all = AllowedCpus();
  // The pool is made by a thread bound to one CPU; its helpers are given
  // every CPU back, and they run some of the chunks.
  std::vector<std::vector<int>> helper_cpus;
  std::thread t([&] {
    ASSERT_TRUE(BindCurrentThread({all.front()}).ok());
    ThreadPool pool(3, all);
    const std::thread::id caller = std::this_thread::get_id();
    absl::Mutex mu;
    for (int attempt = 0; attempt < 50 && helper_cpus.empty(); ++attempt) {
      pool.ParallelFor(64, 1, [&](int64_t, int64_t) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (std::this_thread::get_id() == caller) return;
        absl::MutexLock lock(&mu);
        helper_cpus.push_back(AllowedCpus());
      });
    }
  });
  t.join();
  ASSERT_FALSE(helper_cpus.empty()) << "no helper ever joined a loop";
  for (const auto& cpus : helper_cpus) EXPECT_EQ(cpus, all);
}

}  // namespace
}  // namespace moe
