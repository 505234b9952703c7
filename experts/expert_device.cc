#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "experts/cuda_expert_runner.h"

namespace moe {

std::string ExpertDevice::ToString() const { return cuda ? absl::StrCat("cuda:", ordinal) : "cpu"; }

absl::StatusOr<ExpertDevice> ParseExpertDevice(absl::string_view text) {
  ExpertDevice d;
  if (text == "cpu") return d;
  absl::string_view rest = text;
  int n = -1;
  if (absl::ConsumePrefix(&rest, "cuda:") && !rest.empty() && rest.size() <= 3 &&
      rest.find_first_not_of("0123456789") == absl::string_view::npos && absl::SimpleAtoi(rest, &n) && n <= 255) {
    d.cuda = true;
    d.ordinal = n;
    return d;
  }
  return absl::InvalidArgumentError(absl::StrCat("device '", text, "': expected cpu or cuda:N"));
}

}  // namespace moe
