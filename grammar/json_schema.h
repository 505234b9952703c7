// JSON Schema to a regular expression (grammar/byte_dfa.h's dialect), for
// the schemas a regular language can express: what structured output
// supports until the grammar engine (a lexer plus an Earley parser) lands.
//
// Output is compact JSON (no whitespace), properties in the schema's order.
// Supported (draft 2020-12 names): type (one or a list), properties,
// required, additionalProperties: false (the default, true, would allow any
// JSON value under any key: not regular), items, prefixItems, minItems,
// maxItems, enum, const, anyOf, oneOf (only when its branches have
// different types: provably disjoint), $ref to #/$defs/... or
// #/definitions/... (not recursive), string minLength / maxLength and format
// (date, time, date-time, uuid, email, ipv4), boolean, null, number,
// integer. Annotations (title, description, examples, default, $comment,
// $schema, $id) are ignored. Anything else is INVALID_ARGUMENT naming the
// keyword and its path (e.g. "/properties/age/minimum"): never silently
// ignored. Limits: nesting depth, output size, repetition counts.
#ifndef MOE_GRAMMAR_JSON_SCHEMA_H_
#define MOE_GRAMMAR_JSON_SCHEMA_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace moe::grammar {

struct JsonSchemaOptions {
  int max_depth = 32;
  int64_t max_regex_bytes = 64 << 10;
  int max_repeat = 1000;  // minItems / maxItems / minLength / maxLength bound
};

// The schema is JSON text.
absl::StatusOr<std::string> JsonSchemaToRegex(absl::string_view schema_json, const JsonSchemaOptions& options = {});

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_JSON_SCHEMA_H_
