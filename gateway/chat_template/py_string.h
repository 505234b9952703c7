// Python `str` semantics over UTF-8 std::string, for the chat-template
// evaluator: code-point indexing, str.isspace, strip/split/replace, upper/
// lower, repr() and the float repr. Pure functions, thread-safe.
//
// Inputs are valid UTF-8 (templates are checked at compile time, values come
// from parsed JSON); an invalid byte decodes as itself (U+0080..U+00FF), so
// nothing here fails.
#ifndef MOE_GATEWAY_CHAT_TEMPLATE_PY_STRING_H_
#define MOE_GATEWAY_CHAT_TEMPLATE_PY_STRING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/utf8.h"

namespace moe::chat::py {

// Decodes the code point at s[*pos] and advances *pos past it.
char32_t DecodeAt(std::string_view s, size_t* pos);
using ::moe::AppendUtf8;  // core/utf8.h
std::u32string ToCodePoints(std::string_view s);
std::string FromCodePoints(std::u32string_view cps);
bool IsValidUtf8(std::string_view s);
// len() of a Python str: the number of code points.
size_t Length(std::string_view s);

// str.isspace() for one code point (also what Python's re `\s` matches).
bool IsSpace(char32_t c);
// Byte length of the whitespace code point at s[pos], 0 when it is not one.
size_t SpaceLengthAt(std::string_view s, size_t pos);

// str.strip / lstrip / rstrip; `chars` absent strips whitespace.
std::string Strip(std::string_view s, std::optional<std::string_view> chars, bool left, bool right);
// str.split / str.rsplit; `sep` absent splits on whitespace runs. maxsplit < 0:
// no limit. An empty `sep` is a ValueError in Python: callers check it.
std::vector<std::string> Split(std::string_view s, std::optional<std::string_view> sep, int64_t maxsplit);
std::vector<std::string> RSplit(std::string_view s, std::optional<std::string_view> sep, int64_t maxsplit);
// str.replace; count < 0: all.
std::string Replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count);
// str.find / rfind: code-point index or -1; str.count.
int64_t Find(std::string_view s, std::string_view sub, bool from_right);
int64_t Count(std::string_view s, std::string_view sub);

// Case mapping per code point (Unicode simple mapping: 'ß'.upper() stays 'ß',
// where Python gives 'SS').
std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
std::string Title(std::string_view s);
std::string Capitalize(std::string_view s);

// repr(str): quotes and escapes as CPython does.
std::string Repr(std::string_view s);
// repr(float): shortest round-trip digits, fixed for 1e-4 <= |x| < 1e16.
std::string FormatFloat(double d);
// json.dumps(str, ensure_ascii=False).
std::string JsonQuote(std::string_view s);

}  // namespace moe::chat::py

#endif  // MOE_GATEWAY_CHAT_TEMPLATE_PY_STRING_H_
