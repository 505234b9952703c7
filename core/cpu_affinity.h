// CPU placement of threads: parsing CPU lists ("0-3,6") and binding threads.
//
// Used by processes that share a host with others (an expert worker next to
// the router and the other workers): a worker whose request-serving threads
// have CPUs of their own is woken on those CPUs, instead of being queued by
// the kernel behind another process's computation while a CPU idles
// (docs/dispatch.md shows the traces).
//
// Thread-safety: the functions act on the calling thread only; threads it
// creates afterwards inherit its CPUs and scheduling policy.
#ifndef MOE_CORE_CPU_AFFINITY_H_
#define MOE_CORE_CPU_AFFINITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moe {

// The CPUs the calling thread may run on, ascending.
std::vector<int> AllowedCpus();

// Parses a list such as "0-3,6" (ranges inclusive, any order, no
// duplicates) into ascending CPU numbers. INVALID_ARGUMENT naming the bad
// item when it is malformed, empty, or names a CPU outside `allowed`.
absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text, const std::vector<int>& allowed);

// "0-3,6" again, the compact form of ascending `cpus`.
std::string FormatCpuList(const std::vector<int>& cpus);

// Binds the calling thread to `cpus` (non-empty).
absl::Status BindCurrentThread(const std::vector<int>& cpus);

// Puts the calling thread under SCHED_BATCH: it no longer preempts a running
// thread when it wakes up (Linux's policy for throughput work). Needs no
// privilege.
absl::Status UseBatchScheduling();

}  // namespace moe

#endif  // MOE_CORE_CPU_AFFINITY_H_
