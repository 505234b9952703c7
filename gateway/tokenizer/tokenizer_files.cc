// Tokenizer::FromDirectory and tokenizer_config.json: reading the files of a
// Hugging Face model directory.
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/bounded_json.h"
#include "core/status_macros.h"
#include "gateway/tokenizer/json_util.h"
#include "gateway/tokenizer/tokenizer.h"

namespace moe::tokenizer {
namespace {

// The whole file, gunzipped when it is gzip data (zlib reads plain files too).
absl::StatusOr<std::string> ReadMaybeGzipped(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  std::unique_ptr<gzFile_s, decltype(&gzclose)> owner(f, &gzclose);
  gzbuffer(f, 1 << 18);
  std::string out;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) out.reserve(static_cast<size_t>(size) * 6);  // gzip ratio of tokenizer.json is ~5.5
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    return absl::DataLossError(absl::StrCat(path, ": read failed: ", msg == nullptr ? "unknown error" : msg));
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> TokenName(const Json& config, absl::string_view key,
                                                     absl::string_view source) {
  const Json* f = FindField(config, key);
  if (f == nullptr) return std::optional<std::string>();
  if (f->is_string()) return std::optional<std::string>(f->get<std::string>());
  if (f->is_object()) {
    ASSIGN_OR_RETURN(std::string content, GetString(*f, "content", absl::StrCat(source, ": ", key)));
    return std::optional<std::string>(std::move(content));
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, " is neither a string nor an object"));
}

}  // namespace

absl::Status Tokenizer::ApplyConfig(absl::string_view config_json, absl::string_view source) {
  absl::StatusOr<Json> parsed = ParseBoundedJson<Json>(config_json, kFileJsonLimits, source);
  if (!parsed.ok()) return parsed.status();
  const Json config = std::move(*parsed);
  if (!config.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  struct Field {
    const char* key;
    std::optional<int32_t>* id;
  };
  for (const Field& field : {Field{"bos_token", &bos_id_}, Field{"eos_token", &eos_id_}, Field{"pad_token", &pad_id_}}) {
    ASSIGN_OR_RETURN(const std::optional<std::string> name, TokenName(config, field.key, source));
    *field.id = name.has_value() ? TokenToId(*name) : std::nullopt;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(path, ec)) {
    path += ".gz";
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat(dir, ": no tokenizer.json or tokenizer.json.gz"));
    }
  }
  ASSIGN_OR_RETURN(const std::string json, ReadMaybeGzipped(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, FromJson(json, path));
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::exists(config_path, ec)) {
    ASSIGN_OR_RETURN(const std::string config, ReadMaybeGzipped(config_path));
    RETURN_IF_ERROR(tokenizer->ApplyConfig(config, config_path));
  }
  return tokenizer;
}

}  // namespace moe::tokenizer
