#include "tools/loadgen/http_backend.h"

#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "httplib.h"
#include "tools/loadgen/sse.h"

namespace moe::loadgen {

std::unique_ptr<httplib::Client> MakeHttpClient(const HttpBackendOptions& options) {
  auto client = std::make_unique<httplib::Client>(options.base_url, options.tls_cert_file, options.tls_key_file);
  if (!options.tls_ca_file.empty()) client->set_ca_cert_path(options.tls_ca_file.c_str());
  client->enable_server_certificate_verification(true);
  if (!options.api_key.empty()) client->set_bearer_token_auth(options.api_key);
  return client;
}

absl::StatusOr<std::string> QueryHttpModel(const HttpBackendOptions& options, int64_t timeout_ms) {
  const std::string& base_url = options.base_url;
  std::unique_ptr<httplib::Client> owned = MakeHttpClient(options);
  httplib::Client& client = *owned;
  client.set_connection_timeout(std::chrono::milliseconds(timeout_ms));
  client.set_read_timeout(std::chrono::milliseconds(timeout_ms));
  const std::string url = absl::StrCat(base_url, "/v1/models");
  httplib::Result res = client.Get("/v1/models");
  if (!res) return absl::UnavailableError(absl::StrCat(url, ": ", httplib::to_string(res.error())));
  if (res->status != 200) return absl::UnavailableError(absl::StrCat(url, ": HTTP ", res->status));
  const nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
      j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
    return j["data"][0]["id"].get<std::string>();
  }
  return absl::NotFoundError(absl::StrCat(url, ": no model listed"));
}

nlohmann::json CompletionRequestBody(const RequestSpec& spec, const std::string& model) {
  nlohmann::json body = {
      {"max_tokens", spec.max_tokens},
      {"temperature", spec.temperature},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  if (!model.empty()) body["model"] = model;
  if (!spec.token_ids.empty()) {
    body["prompt"] = spec.token_ids;
  } else {
    body["prompt"] = spec.text;
  }
  if (spec.ignore_eos) body["ignore_eos"] = true;
  return body;
}

namespace {

struct Pending {
  RequestSpec spec;
  Clock::time_point origin;
  Backend::DoneCallback done;
};

// Reads one streamed completion into `record`.
class CompletionStream {
 public:
  CompletionStream(RequestRecord* record, Clock::time_point origin) : record_(record), origin_(origin) {}

  void Event(const std::string& data) {
    if (data == "[DONE]") {
      done_marker_ = true;
      return;
    }
    const nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return;
    if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
      error_ = e->is_object() && e->contains("message") && (*e)["message"].is_string()
                   ? (*e)["message"].get<std::string>()
                   : e->dump();
      return;
    }
    if (auto choices = j.find("choices"); choices != j.end() && choices->is_array()) {
      for (const auto& c : *choices) {
        if (auto text = c.find("text"); text != c.end() && text->is_string() && !text->get<std::string>().empty()) {
          const double t = SecondsSince(origin_, Clock::now());
          if (record_->first_token_s < 0) record_->first_token_s = t;
          record_->events.push_back({t, 1});
        }
        if (auto f = c.find("finish_reason"); f != c.end() && !f->is_null()) finished_ = true;
      }
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      usage_ = true;
      record_->prompt_tokens = u->value("prompt_tokens", record_->prompt_tokens);
      record_->output_tokens = u->value("completion_tokens", 0);
    }
  }

  bool finished() const { return finished_ || done_marker_; }
  bool usage() const { return usage_; }
  const std::string& error() const { return error_; }

 private:
  RequestRecord* record_;
  Clock::time_point origin_;
  bool done_marker_ = false, finished_ = false, usage_ = false;
  std::string error_;
};

RequestRecord Send(httplib::Client& client, const std::string& endpoint, const std::string& model,
                   const Pending& p) {
  RequestRecord record;
  record.index = p.spec.index;
  record.warmup = p.spec.warmup;
  record.scheduled_s = p.spec.scheduled_s;
  record.prompt_tokens = static_cast<int>(p.spec.token_ids.size());
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(p.spec.timeout_ms);
  CompletionStream stream(&record, p.origin);
  SseParser parser([&](const std::string& data) { stream.Event(data); });
  int http_status = 0;
  std::string error_body;
  bool timed_out = false;

  httplib::Request req;
  client.set_read_timeout(std::chrono::milliseconds(p.spec.timeout_ms));
  req.method = "POST";
  req.path = endpoint;
  req.headers.emplace("Content-Type", "application/json");
  req.headers.emplace("Accept", "text/event-stream");
  req.body = CompletionRequestBody(p.spec, model).dump();
  req.response_handler = [&](const httplib::Response& res) {
    http_status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (http_status != 200) {
      if (error_body.size() < 1000) error_body.append(data, std::min<size_t>(n, 1000 - error_body.size()));
    } else {
      parser.Feed(absl::string_view(data, n));
    }
    if (Clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  record.sent_s = SecondsSince(p.origin, Clock::now());
  const bool sent = client.send(req, res, error);
  parser.Finish();
  record.done_s = SecondsSince(p.origin, Clock::now());
  if (!stream.usage()) record.output_tokens = static_cast<int>(record.events.size());
  if (timed_out) {
    record.status = "DEADLINE_EXCEEDED";
    record.error_message = absl::StrCat("no end after ", p.spec.timeout_ms, " ms");
  } else if (!sent && http_status == 0) {
    record.status = absl::StrCat("TRANSPORT ", httplib::to_string(error));
    record.error_message = httplib::to_string(error);
  } else if (http_status != 200) {
    record.status = absl::StrCat("HTTP ", http_status);
    record.error_message = error_body;
  } else if (!stream.error().empty()) {
    record.status = "STREAM_ERROR";
    record.error_message = stream.error();
  } else if (!sent) {
    record.status = absl::StrCat("TRANSPORT ", httplib::to_string(error));
    record.error_message = "the stream broke off";
  } else if (!stream.finished()) {
    record.status = "INCOMPLETE";
    record.error_message = "the stream ended without a finish reason or [DONE]";
  } else {
    record.ok = true;
  }
  return record;
}

}  // namespace

struct HttpBackend::Impl {
  HttpBackendOptions options;
  absl::Mutex mu;
  std::deque<Pending> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::vector<std::thread> threads;

  void Loop() {
    std::unique_ptr<httplib::Client> owned = MakeHttpClient(options);
    httplib::Client& client = *owned;
    client.set_keep_alive(true);
    client.set_connection_timeout(10);
    for (;;) {
      Pending p;
      {
        absl::MutexLock lock(&mu);
        mu.Await(absl::Condition(
            +[](Impl* impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl->mu) { return impl->stopping || !impl->queue.empty(); },
            this));
        if (queue.empty()) return;  // stopping, and nothing left
        p = std::move(queue.front());
        queue.pop_front();
      }
      RequestRecord record = Send(client, options.endpoint, options.model, p);
      p.done(std::move(record));
    }
  }
};

HttpBackend::HttpBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpBackend::~HttpBackend() {
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->stopping = true;
  }
  for (std::thread& t : impl_->threads) t.join();
}

absl::StatusOr<std::unique_ptr<HttpBackend>> HttpBackend::Create(const HttpBackendOptions& options) {
  const bool http = absl::StartsWith(options.base_url, "http://") && options.base_url.size() > 7;
  const bool https = absl::StartsWith(options.base_url, "https://") && options.base_url.size() > 8;
  if (!http && !https) {
    return absl::InvalidArgumentError(absl::StrCat("--base-url '", options.base_url, "': want http://HOST[:PORT]"));
  }
  if (options.connections <= 0) return absl::InvalidArgumentError("--http-connections must be positive");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  while (!impl->options.base_url.empty() && impl->options.base_url.back() == '/') impl->options.base_url.pop_back();
  Impl* raw = impl.get();
  for (int i = 0; i < options.connections; ++i) impl->threads.emplace_back([raw] { raw->Loop(); });
  return std::unique_ptr<HttpBackend>(new HttpBackend(std::move(impl)));
}

void HttpBackend::Start(const RequestSpec& spec, Clock::time_point origin, DoneCallback done) {
  absl::MutexLock lock(&impl_->mu);
  impl_->queue.push_back({spec, origin, std::move(done)});
}

std::string HttpBackend::Describe() const {
  return absl::StrCat("http ", impl_->options.base_url, impl_->options.endpoint);
}

}  // namespace moe::loadgen
