// UTF-8 and Unicode helpers for the tokenizer: decoding code points, lossy
// UTF-8 decoding with the same replacement rules as Rust's
// String::from_utf8_lossy (which the reference tokenizers use), Unicode
// normalization forms and case mapping (through utf8proc), character classes,
// and the GPT-2 byte <-> code point map of byte-level BPE.
//
// Everything here is a pure function; thread-safe.
#ifndef MOE_GATEWAY_TOKENIZER_UNICODE_H_
#define MOE_GATEWAY_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/utf8.h"

namespace moe::tokenizer {

inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// OK when `text` is valid UTF-8; otherwise INVALID_ARGUMENT naming `what` and
// the byte offset of the first bad sequence.
absl::Status ValidateUtf8(absl::string_view text, absl::string_view what);

// Decodes the code point at text[*pos] of VALID UTF-8 and advances *pos.
char32_t NextCodepoint(absl::string_view text, size_t* pos);
// Number of bytes of the UTF-8 sequence that lead byte `c` starts (1 for an
// invalid lead byte, so that loops over unchecked text always advance).
int Utf8SequenceLength(unsigned char c);
using ::moe::AppendUtf8;  // core/utf8.h
// Number of code points of valid UTF-8.
size_t CodepointCount(absl::string_view text);

// Appends the lossy UTF-8 decoding of `bytes` to *out: every maximal invalid
// subsequence becomes one U+FFFD (Rust's from_utf8_lossy). With
// `final_chunk` false, an incomplete sequence at the very end that more bytes
// could still complete is left alone; returns the number of bytes consumed.
size_t AppendUtf8Lossy(absl::string_view bytes, bool final_chunk, std::string* out);

// Unicode normalization forms. INVALID_ARGUMENT on invalid UTF-8.
enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };
absl::StatusOr<std::string> Normalize(absl::string_view text, NormalizationForm form);
// Builds, once per process, the table with which Normalize(kNfc) copies the
// stretches that NFC leaves unchanged instead of running utf8proc on them
// (about 10 ms). Normalize builds it on first use; tokenizers with an NFC
// normalizer call this while loading, so that no request pays for it.
void PrepareNfc();
// Full lowercase mapping of every code point (Rust's char::to_lowercase).
std::string ToLowercase(absl::string_view text);

// Character classes, as Rust's char methods define them.
bool IsWhitespace(char32_t cp);   // White_Space property
bool IsNumeric(char32_t cp);      // general category Nd, Nl or No
bool IsPunctuation(char32_t cp);  // ASCII punctuation or category P*
bool IsWordChar(char32_t cp);     // regex \w: letters, marks, Nd, Pc, joiners

// The GPT-2 byte-level map: byte b is written as code point ByteToCodepoint(b).
char32_t ByteToCodepoint(uint8_t b);
// The inverse; -1 for a code point that is not in the map.
int CodepointToByte(char32_t cp);
// UTF-8 of ByteToCodepoint(b) for every byte of `bytes`, appended to *out.
void AppendByteLevel(absl::string_view bytes, std::string* out);

}  // namespace moe::tokenizer

#endif  // MOE_GATEWAY_TOKENIZER_UNICODE_H_
