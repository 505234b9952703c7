// JSON Schema to a Grammar (grammar/grammar.h): the json_schema and
// json_object constraints.
//
// Output is JSON with properties in the schema's order, additional
// properties (when allowed) after the declared ones. Whitespace: compact (no
// whitespace at all) or flexible (up to max_whitespace bytes of space, tab,
// newline or carriage return wherever JSON allows whitespace; bounded, so a
// model cannot loop on whitespace).
//
// Supported (draft 2020-12 names): type (one or a list; absent: every type,
// with each keyword applying to its own type), properties, required,
// additionalProperties (absent or true: other keys with any JSON value;
// false; or a schema), items, prefixItems (items after them: any JSON unless
// items says otherwise), minItems / maxItems (counters), enum, const, anyOf,
// oneOf (only when its branches have distinct single types: provably
// disjoint), $ref to "#", #/$defs/... or #/definitions/... (recursion
// included), the schemas true and false, string minLength / maxLength,
// pattern (ECMAScript-like, grammar/byte_dfa.h's dialect, unanchored unless
// ^...$; characters JSON would escape are never produced by it), format
// (date, time, date-time, uuid, email, ipv4), integer minimum / maximum /
// exclusiveMinimum / exclusiveMaximum, boolean, null, number, integer.
// Annotations (title, description, examples, default, $comment, $schema,
// $id, ...) are ignored. Anything else is INVALID_ARGUMENT naming the keyword
// and its path (e.g. "/properties/age/multipleOf"): never silently ignored.
// Limits: nesting depth, counts, grammar size (GrammarLimits).
#ifndef MOE_GRAMMAR_JSON_SCHEMA_H_
#define MOE_GRAMMAR_JSON_SCHEMA_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grammar/grammar.h"

namespace moe::grammar {

struct JsonSchemaOptions {
  int max_depth = 32;
  int64_t max_count = 1 << 20;  // minItems / maxItems / minLength / maxLength bound
  bool flexible_whitespace = false;
  int max_whitespace = 16;  // bytes per gap in flexible mode (1 to 128)
  GrammarLimits limits;
};

// The schema is JSON text.
absl::StatusOr<std::unique_ptr<Grammar>> JsonSchemaToGrammar(absl::string_view schema_json,
                                                             const JsonSchemaOptions& options = {});
// Any JSON object (OpenAI's response_format json_object).
absl::StatusOr<std::unique_ptr<Grammar>> JsonObjectGrammar(const JsonSchemaOptions& options = {});

}  // namespace moe::grammar

#endif  // MOE_GRAMMAR_JSON_SCHEMA_H_
