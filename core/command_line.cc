#include "core/command_line.h"

namespace moe {

NormalizedArgs::NormalizedArgs(int argc, char** argv) : args_(argv, argv + argc) {
  for (size_t i = 1; i < args_.size(); ++i) {
    std::string& a = args_[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    for (size_t j = 2; j < a.size() && a[j] != '='; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  for (std::string& a : args_) ptrs_.push_back(a.data());
  ptrs_.push_back(nullptr);
  ptrs_.pop_back();  // argv[argc] stays addressable as nullptr
}

}  // namespace moe
