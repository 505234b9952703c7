// Command-line helpers shared by the binaries' main.cc files.
#ifndef MOE_CORE_COMMAND_LINE_H_
#define MOE_CORE_COMMAND_LINE_H_

#include <string>
#include <vector>

namespace moe {

// absl flag names cannot contain '-', but users write --max-tokens and
// --kv-heads. Holds a copy of argv in which the name part of every "--flag"
// (up to '=' and before a bare "--") has '-' turned into '_'.
class NormalizedArgs {
 public:
  NormalizedArgs(int argc, char** argv);
  int argc() const { return static_cast<int>(ptrs_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

}  // namespace moe

#endif  // MOE_CORE_COMMAND_LINE_H_
