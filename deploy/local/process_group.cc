#include "deploy/local/process_group.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace moe {

ProcessGroup::~ProcessGroup() { StopAll(); }

absl::StatusOr<pid_t> ProcessGroup::Spawn(const std::string& name, const std::vector<std::string>& argv,
                                          const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("spawn: empty command line");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(name, ": ", argv[0], " is not an executable file"));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat(name, ": fork failed: ", std::strerror(errno)));
  if (pid == 0) {
    // Child: die with the launcher; take signals normally again.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the whole terminal group; the launcher decides
    if (!log_path.empty()) {
      const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
    }
    execv(args[0], args.data());
    _exit(127);
  }
  children_.push_back({name, pid, false, 0});
  return pid;
}

std::vector<ProcessGroup::Child> ProcessGroup::Reap() {
  std::vector<Child> exited;
  for (Child& c : children_) {
    if (c.exited) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.exited = true;
      c.status = status;
      exited.push_back(c);
    }
  }
  return exited;
}

void ProcessGroup::StopAll(std::chrono::milliseconds grace) {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (!it->exited) kill(it->pid, SIGTERM);
  }
  const auto end = std::chrono::steady_clock::now() + grace;
  for (;;) {
    Reap();
    bool alive = false;
    for (const Child& c : children_) alive |= !c.exited;
    if (!alive) return;
    if (std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (Child& c : children_) {
    if (c.exited) continue;
    kill(c.pid, SIGKILL);
    waitpid(c.pid, &c.status, 0);
    c.exited = true;
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return "unknown";
}

}  // namespace moe
