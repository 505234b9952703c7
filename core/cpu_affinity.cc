#include "core/cpu_affinity.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace moe {

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text, const std::vector<int>& allowed) {
  std::vector<int> out;
  if (absl::StripAsciiWhitespace(text).empty()) return absl::InvalidArgumentError("CPU list is empty");
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    std::pair<absl::string_view, absl::string_view> range = absl::StrSplit(item, absl::MaxSplits('-', 1));
    int first = 0, last = 0;
    const bool is_range = item.find('-') != absl::string_view::npos;
    if (!absl::SimpleAtoi(range.first, &first) || (is_range && !absl::SimpleAtoi(range.second, &last)) ||
        first < 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", item, "\" is not a CPU number or a range A-B"));
    }
    if (!is_range) last = first;
    if (last < first) return absl::InvalidArgumentError(absl::StrCat("range \"", item, "\" ends before it starts"));
    for (int c = first; c <= last; ++c) {
      if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
        return absl::InvalidArgumentError(absl::StrCat("CPU ", c, " is not one this process may use (",
                                                       FormatCpuList(allowed), ")"));
      }
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  if (auto dup = std::adjacent_find(out.begin(), out.end()); dup != out.end()) {
    return absl::InvalidArgumentError(absl::StrCat("CPU ", *dup, " is listed twice"));
  }
  return out;
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    parts.push_back(j == i ? absl::StrCat(cpus[i]) : absl::StrCat(cpus[i], "-", cpus[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

absl::Status BindCurrentThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("no CPU to bind to");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) return absl::InvalidArgumentError(absl::StrCat("CPU ", c, " is out of range"));
    CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    return absl::InternalError(absl::StrCat("sched_setaffinity(", FormatCpuList(cpus), "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status UseBatchScheduling() {
  sched_param param{};
  param.sched_priority = 0;
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) {
    return absl::InternalError(absl::StrCat("sched_setscheduler(SCHED_BATCH): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace moe
