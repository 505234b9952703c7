#include "experts/expert_spec.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace moe {
namespace {

// A non-negative decimal number (no sign, no spaces).
bool ParseIndex(absl::string_view text, int64_t* out) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  return absl::SimpleAtoi(text, out);
}

absl::Status BadItem(absl::string_view item, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--experts: bad item '", item, "': ", why));
}

// "E" or "E1-E2" -> [first, last], checked against `limit` experts.
absl::Status ParseRange(absl::string_view item, absl::string_view text, int64_t limit, int64_t* first,
                        int64_t* last) {
  const size_t dash = text.find('-');
  if (dash == absl::string_view::npos) {
    if (!ParseIndex(text, first)) return BadItem(item, "expected an expert number, E1-E2 or L:E");
    *last = *first;
  } else if (!ParseIndex(text.substr(0, dash), first) || !ParseIndex(text.substr(dash + 1), last)) {
    return BadItem(item, "expected a range E1-E2 of expert numbers");
  }
  if (*first > *last) return BadItem(item, absl::StrCat("range ", *first, "-", *last, " is empty"));
  if (*last >= limit) {
    return BadItem(item, absl::StrCat("expert ", *last, " is outside the model (", limit, " experts, 0-",
                                      limit - 1, ")"));
  }
  return absl::OkStatus();
}

bool IsDense(absl::Span<const int> dense_layers, int64_t layer) {
  for (int l : dense_layers) {
    if (l == layer) return true;
  }
  return false;
}

absl::Status ParseMod(absl::string_view spec, absl::string_view body, int64_t num_layers, int64_t num_experts,
                      absl::Span<const int> dense_layers, std::set<ExpertKey>* keys) {
  const size_t slash = body.find('/');
  int64_t index = 0, count = 0;
  if (slash == absl::string_view::npos || !ParseIndex(body.substr(0, slash), &index) ||
      !ParseIndex(body.substr(slash + 1), &count)) {
    return BadItem(spec, "expected mod:I/N, e.g. mod:1/4");
  }
  if (count < 1) return BadItem(spec, "N must be at least 1");
  if (index >= count) return BadItem(spec, absl::StrCat("I must be below N (0-", count - 1, ")"));
  for (int64_t l = 0; l < num_layers; ++l) {
    if (IsDense(dense_layers, l)) continue;
    for (int64_t e = index; e < num_experts; e += count) keys->insert({static_cast<int>(l), static_cast<int>(e)});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ExpertKey>> ParseExpertSpec(absl::string_view spec, int64_t num_layers,
                                                       int64_t num_experts, absl::Span<const int> dense_layers) {
  if (num_layers < 1 || num_experts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--experts: the model has ", num_layers, " layers and ", num_experts, " experts"));
  }
  std::set<ExpertKey> keys;
  absl::string_view mod_body = spec;
  if (spec == "all") {
    for (int64_t l = 0; l < num_layers; ++l) {
      if (IsDense(dense_layers, l)) continue;
      for (int64_t e = 0; e < num_experts; ++e) keys.insert({static_cast<int>(l), static_cast<int>(e)});
    }
  } else if (absl::ConsumePrefix(&mod_body, "mod:")) {
    absl::Status s = ParseMod(spec, mod_body, num_layers, num_experts, dense_layers, &keys);
    if (!s.ok()) return s;
  } else {
    if (spec.empty()) return absl::InvalidArgumentError("--experts: empty spec (use all, mod:I/N or a list)");
    for (absl::string_view item : absl::StrSplit(spec, ',')) {
      if (item.empty()) return BadItem(item, "empty item (stray comma?)");
      int64_t layer = -1, first = 0, last = 0;
      absl::string_view range = item;
      const size_t colon = item.find(':');
      if (colon != absl::string_view::npos) {
        if (!ParseIndex(item.substr(0, colon), &layer)) return BadItem(item, "expected a layer number before ':'");
        if (layer >= num_layers) {
          return BadItem(item, absl::StrCat("layer ", layer, " is outside the model (", num_layers, " layers, 0-",
                                            num_layers - 1, ")"));
        }
        if (IsDense(dense_layers, layer)) {
          return BadItem(item, absl::StrCat("layer ", layer, " is a dense MLP layer (it has no experts)"));
        }
        range = item.substr(colon + 1);
      }
      absl::Status s = ParseRange(item, range, num_experts, &first, &last);
      if (!s.ok()) return s;
      const int64_t l0 = layer < 0 ? 0 : layer, l1 = layer < 0 ? num_layers - 1 : layer;
      for (int64_t l = l0; l <= l1; ++l) {
        if (IsDense(dense_layers, l)) continue;
        for (int64_t e = first; e <= last; ++e) keys.insert({static_cast<int>(l), static_cast<int>(e)});
      }
    }
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--experts '", spec, "' selects no expert of this model (", num_experts, " experts)"));
  }
  return std::vector<ExpertKey>(keys.begin(), keys.end());
}

std::string DescribeExperts(const std::vector<ExpertKey>& keys) {
  std::string out = absl::StrCat(keys.size(), " experts");
  int layer = -1;
  for (const ExpertKey& k : keys) {
    if (k.layer != layer) {
      absl::StrAppend(&out, layer < 0 ? ": " : "; ", "layer ", k.layer, ": ", k.expert);
      layer = k.layer;
    } else {
      absl::StrAppend(&out, ",", k.expert);
    }
  }
  return out;
}

}  // namespace moe
