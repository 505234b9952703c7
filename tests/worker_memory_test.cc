// Expert workers page in their share of the weights and no more: a worker
// started with mod:i/4 is resident with well under half of what a worker
// holding every expert is (processes started as a user would, ports chosen
// by the OS, health checked before measuring).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/rpc_util.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kBin = MOE_BIN_DIR;

// A child process, killed (SIGKILL) and reaped when this goes out of scope.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Child() { Stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool Running() const {
    if (pid_ <= 0) return false;
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == 0;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

int RunCommand(const std::string& command) { return std::system((command + " > /dev/null 2>&1").c_str()); }

// Resident set size of `pid`, kB (VmRSS in /proc/PID/status).
long VmRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The address a worker wrote, once it wrote it ("" if it died or took too long).
std::string AwaitAddress(const Child& child, const std::string& file, Clock::time_point until) {
  while (Clock::now() < until && child.Running()) {
    std::ifstream in(file);
    std::string address;
    if (in >> address && !address.empty()) return address;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

class WorkerMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/moe-worker-memory-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(WorkerMemoryTest, EachOfFourWorkersHoldsAboutAQuarterOfTheExperts) {
  // Experts are ~96% of this model: 4 layers x 8 experts x 3 x 256 x 4096 bf16 = 192 MiB.
  const std::string model = dir_ + "/model";
  ASSERT_EQ(0, RunCommand(kBin + "/moe-model make-tiny --out " + model +
                   " --hidden 256 --layers 4 --experts 8 --ffn 4096 --vocab 1000"));

  const auto until = Clock::now() + std::chrono::seconds(30);
  std::vector<std::unique_ptr<Child>> workers;
  std::vector<std::string> specs = {"all", "mod:0/4", "mod:1/4", "mod:2/4", "mod:3/4"};
  for (size_t i = 0; i < specs.size(); ++i) {
    workers.push_back(std::make_unique<Child>(std::vector<std::string>{
        kBin + "/moe-expert-worker", "--model", model, "--experts", specs[i], "--listen", "127.0.0.1:0",
        "--address-file", dir_ + "/worker" + std::to_string(i) + ".addr", "--threads", "1"}));
    ASSERT_GT(workers.back()->pid(), 0) << "cannot start moe-expert-worker";
  }
  std::vector<long> rss_kb;
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string address = AwaitAddress(*workers[i], dir_ + "/worker" + std::to_string(i) + ".addr", until);
    ASSERT_FALSE(address.empty()) << specs[i] << ": no address (worker died or was slow)";
    const int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    const absl::Status serving = moe::rpc::WaitForServing(address, std::max<int64_t>(left_ms, 1));
    ASSERT_TRUE(serving.ok()) << specs[i] << ": " << serving;
    rss_kb.push_back(VmRssKb(workers[i]->pid()));
    ASSERT_GT(rss_kb.back(), 0) << specs[i];
  }
  // Prefaulted at load: the all-experts worker is resident with every weight.
  EXPECT_GT(rss_kb[0], 192 * 1024) << "all-experts worker: VmRSS " << rss_kb[0] << " kB";
  for (size_t i = 1; i < specs.size(); ++i) {
    EXPECT_LT(rss_kb[i], rss_kb[0] * 4 / 10)
        << specs[i] << ": VmRSS " << rss_kb[i] << " kB, all-experts worker " << rss_kb[0] << " kB";
    std::printf("%s: VmRSS %ld kB (%.1f%% of the all-experts worker's %ld kB)\n", specs[i].c_str(), rss_kb[i],
                100.0 * rss_kb[i] / rss_kb[0], rss_kb[0]);
  }
}

}  // namespace
