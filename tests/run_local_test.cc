// Smoke test of scripts/run-local.sh: it starts the cluster, answers, keeps
// serving, and on SIGINT (Ctrl-C) exits cleanly leaving no process behind.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

// Process ids whose session is `sid`.
std::vector<pid_t> ProcessesInSession(pid_t sid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const pid_t pid = static_cast<pid_t>(atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 2));
    std::string state;
    long ppid, pgrp, session;
    rest >> state >> ppid >> pgrp >> session;
    if (session == sid && state != "Z") out.push_back(pid);
  }
  closedir(d);
  return out;
}

TEST(RunLocalTest, StartsAnswersAndStopsCleanlyOnSigint) {
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setsid();  // its own session and process group, like a terminal job
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(out_pipe[1], STDERR_FILENO);
    close(out_pipe[0]);
    setenv("BUILD_DIR", MOE_BUILD_DIR, 1);
    setenv("MOE_SKIP_BUILD", "1", 1);
    setenv("MOE_MODEL_DIR", (std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral").c_str(), 1);
    setenv("MOE_PORT", "0", 1);
    setenv("MOE_HTTP_PORT", "0", 1);
    setenv("MOE_MAX_TOKENS", "8", 1);
    execl("/bin/bash", "bash", MOE_SOURCE_DIR "/scripts/run-local.sh", nullptr);
    _exit(127);
  }
  close(out_pipe[1]);
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  char buf[4096];
  while (output.find("keeps serving at") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(out_pipe[0], &fds);
    timeval tv{1, 0};
    if (select(out_pipe[0] + 1, &fds, nullptr, nullptr, &tv) > 0) {
      const ssize_t n = read(out_pipe[0], buf, sizeof buf);
      if (n <= 0) break;
      output.append(buf, static_cast<size_t>(n));
    }
  }
  ASSERT_THAT(output, HasSubstr("keeps serving at")) << output;
  EXPECT_THAT(output, HasSubstr("gateway: 127.0.0.1:"));
  EXPECT_THAT(output, HasSubstr("http: 127.0.0.1:"));  // the gateway's HTTP API, printed by moe-cluster
  EXPECT_THAT(output, HasSubstr("Answer"));
  EXPECT_THAT(output, HasSubstr("[FINISH_REASON_LENGTH, 10 prompt + 8 completion tokens]"));
  // The cluster is up: its processes share the script's session.
  EXPECT_GE(ProcessesInSession(child).size(), 5u);  // bash, moe-cluster, 2 workers, router, gateway

  kill(-child, SIGINT);  // Ctrl-C reaches the whole foreground group
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 300 && done == 0; ++i) {
    done = waitpid(child, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(done, child) << "run-local.sh did not stop within 30 s of SIGINT";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(ProcessesInSession(child).empty()) << "processes left behind";
  for (pid_t p : ProcessesInSession(child)) kill(p, SIGKILL);
  close(out_pipe[0]);
}

}  // namespace
