// RunShellCommand: runs a command line through /bin/sh, as a user would type
// it, for the end-to-end tests. Returns its exit status and what it printed:
// stdout, and stderr too unless `merge_stderr` is false (then the command
// line redirects stderr itself, or it goes to the test's own stderr).
#ifndef MOE_TESTS_SHELL_COMMAND_H_
#define MOE_TESTS_SHELL_COMMAND_H_

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace moe::test {

struct ShellResult {
  int exit_code = -1;  // -1: could not run, or killed by a signal
  std::string output;
};

inline ShellResult RunShellCommand(const std::string& command, bool merge_stderr = true) {
  ShellResult r;
  FILE* p = popen((merge_stderr ? command + " 2>&1" : command).c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace moe::test

#endif  // MOE_TESTS_SHELL_COMMAND_H_
