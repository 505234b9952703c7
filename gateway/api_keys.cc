#include "gateway/api_keys.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace moe {
namespace {

// Compares in time independent of where the strings first differ (the
// length still shows; keys are not secret in length).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("api keys file ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<ApiKeys> ApiKeys::Parse(absl::string_view text, absl::string_view origin) {
  ApiKeys keys;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    for (char c : line) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) || !absl::ascii_isprint(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(absl::StrCat("api keys file ", origin, " line ", line_no,
                                                       ": a key must be printable ASCII without spaces"));
      }
    }
    keys.keys_.emplace_back(line);
  }
  if (keys.keys_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("api keys file ", origin, ": holds no key"));
  }
  return keys;
}

absl::Status ApiKeys::Check(absl::string_view authorization) const {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing API key: send the header 'Authorization: Bearer KEY'");
  }
  constexpr absl::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !absl::StartsWithIgnoreCase(authorization, kBearer)) {
    return absl::UnauthenticatedError("malformed Authorization header: expected 'Bearer KEY'");
  }
  const absl::string_view presented = absl::StripLeadingAsciiWhitespace(authorization.substr(kBearer.size()));
  bool found = false;
  for (const std::string& key : keys_) found |= ConstantTimeEquals(presented, key);
  if (!found) return absl::UnauthenticatedError("invalid API key");
  return absl::OkStatus();
}

}  // namespace moe
