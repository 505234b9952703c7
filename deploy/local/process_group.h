// ProcessGroup: child processes started by a launcher, stopped together.
// Children get PR_SET_PDEATHSIG(SIGTERM), so none outlives a launcher that is
// killed outright. Not thread-safe: one owner thread.
#ifndef MOE_DEPLOY_LOCAL_PROCESS_GROUP_H_
#define MOE_DEPLOY_LOCAL_PROCESS_GROUP_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace moe {

class ProcessGroup {
 public:
  struct Child {
    std::string name;
    pid_t pid = -1;
    bool exited = false;
    int status = 0;  // waitpid status once exited
  };

  ProcessGroup() = default;
  ~ProcessGroup();  // StopAll
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Starts `argv[0]` with `argv`; `log_path` (if set) receives stdout+stderr.
  absl::StatusOr<pid_t> Spawn(const std::string& name, const std::vector<std::string>& argv,
                              const std::string& log_path = "");
  // Reaps exited children without blocking; returns the ones that exited now.
  std::vector<Child> Reap();
  // SIGTERM to every live child in reverse start order, then SIGKILL to those
  // still alive after `grace`; waits for all.
  void StopAll(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  const std::vector<Child>& children() const { return children_; }

 private:
  std::vector<Child> children_;
};

// A readable description of a waitpid status ("exit 1", "signal 9").
std::string DescribeExit(int status);

}  // namespace moe

#endif  // MOE_DEPLOY_LOCAL_PROCESS_GROUP_H_
