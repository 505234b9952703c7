// A small XML well-formedness check for the documents moe-loadgen writes
// (tests use it where python3 is absent): one root element, balanced and
// properly nested tags, quoted unique attributes, no stray '<' or '&' in text
// or values, known entities only. No DTDs, CDATA or namespaces checks.
#ifndef MOE_TOOLS_LOADGEN_XML_CHECK_H_
#define MOE_TOOLS_LOADGEN_XML_CHECK_H_

#include <string>

#include "absl/status/status.h"

namespace moe::loadgen {

// OK, or INVALID_ARGUMENT naming the byte offset and what is wrong.
absl::Status CheckWellFormedXml(const std::string& text);

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_XML_CHECK_H_
