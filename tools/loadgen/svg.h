// The --svg chart of a run, written by hand (no library): cumulative
// distributions of TTFT, TPOT and end-to-end latency, and output tokens per
// second over the run. A standalone SVG 1.1 document; pure function.
#ifndef MOE_TOOLS_LOADGEN_SVG_H_
#define MOE_TOOLS_LOADGEN_SVG_H_

#include <string>
#include <vector>

#include "tools/loadgen/report.h"

namespace moe::loadgen {

std::string RenderSvg(const Report& report);

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string XmlEscape(const std::string& text);

// Tick positions for an axis over [0, max]: 0, step, 2 step, ... with step
// 1, 2 or 5 times a power of ten, about `target` of them, the last >= max.
std::vector<double> NiceTicks(double max, int target);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_SVG_H_
