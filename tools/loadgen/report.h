// The report of a run: the text summary (laid out like `vllm bench serve`),
// the JSON document (--json) and what both are made from. Pure functions.
#ifndef MOE_TOOLS_LOADGEN_REPORT_H_
#define MOE_TOOLS_LOADGEN_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tools/loadgen/request.h"
#include "tools/loadgen/router_load.h"
#include "tools/loadgen/stats.h"

namespace moe::loadgen {

struct Report {
  std::string date;      // UTC, ISO 8601
  std::string backend;   // Backend::Describe()
  std::string traffic;   // RunResult::traffic
  std::string workload;  // Workload::Describe()
  nlohmann::json config = nlohmann::json::object();  // the settings of the run, as given
  int64_t warmup_requests = 0;
  int64_t warmup_failed = 0;
  Summary summary;
  MoeFigures moe;                      // moe.router_address empty: not asked for
  std::vector<RequestRecord> records;  // measured requests, by index
};

// The percentile method, as stated in the report.
inline constexpr char kPercentileMethod[] = "linear interpolation between closest ranks (numpy default)";

std::string FormatSummary(const Report& report);

// Every summary figure, the configuration, the MoE section and (when
// `include_requests`) one object per measured request.
nlohmann::json ReportJson(const Report& report, bool include_requests);

// One request as JSON (times in seconds from the run's origin).
nlohmann::json RequestJson(const RequestRecord& record);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_REPORT_H_
