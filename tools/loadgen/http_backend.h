// The HTTP transport: OpenAI-style POST /v1/completions with "stream": true,
// read as server-sent events. A chunk with non-empty text is a token event
// (TTFT at the first); usage comes from the chunk that carries it
// ("stream_options": {"include_usage": true}), else chunks are counted.
// cpp-httplib is blocking, so a fixed pool of `connections` threads, each with
// its own keep-alive connection, sends the requests; more requests than
// threads wait in a queue (their RequestRecord::sent_s shows how long).
#ifndef MOE_TOOLS_LOADGEN_HTTP_BACKEND_H_
#define MOE_TOOLS_LOADGEN_HTTP_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/loadgen/request.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace moe::loadgen {

struct HttpBackendOptions {
  std::string base_url;                  // "http://127.0.0.1:8000" (or https://)
  std::string endpoint = "/v1/completions";
  std::string model;                     // the request's "model" (omitted when empty)
  int connections = 64;                  // sending threads: the most requests in flight
  // https:// only: PEM CA file the server's certificate is verified against
  // (empty: the system's roots), and a client certificate and key (PEM).
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  std::string api_key;  // sent as "Authorization: Bearer KEY" when set
};

// The first model id of GET {base_url}/v1/models (OpenAI's list format), for
// servers that require "model"; an error naming the URL when there is none.
absl::StatusOr<std::string> QueryHttpModel(const HttpBackendOptions& options, int64_t timeout_ms);

// A client for options.base_url with its TLS settings.
std::unique_ptr<httplib::Client> MakeHttpClient(const HttpBackendOptions& options);

// The JSON body of `spec`'s request: token ids as an array of integers, a text
// prompt as a string; vLLM's "ignore_eos" extension when asked for.
nlohmann::json CompletionRequestBody(const RequestSpec& spec, const std::string& model);

class HttpBackend : public Backend {
 public:
  // INVALID_ARGUMENT when base_url is not "http(s)://HOST[:PORT]".
  static absl::StatusOr<std::unique_ptr<HttpBackend>> Create(const HttpBackendOptions& options);
  // Finishes the queued requests, then joins the threads.
  ~HttpBackend() override;

  void Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) override;
  std::string Describe() const override;

 private:
  struct Impl;
  explicit HttpBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::loadgen

#endif  // MOE_TOOLS_LOADGEN_HTTP_BACKEND_H_
