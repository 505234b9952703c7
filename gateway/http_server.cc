#include "gateway/http_server.h"

#include <chrono>
#include <fstream>
#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "gateway/openai_request.h"
#include "gateway/openai_response.h"
#include "gateway/peer_watch.h"
#include "glog/logging.h"
#include "moe/internal/v1/router.grpc.pb.h"
#include "httplib.h"
#include "moe/v1/inference.grpc.pb.h"
#include "proto/rpc_util.h"

namespace moe {
namespace {

constexpr char kJson[] = "application/json";

void SendJson(httplib::Response& res, int status, const OpenAiJson& body) {
  res.status = status;
  res.set_content(DumpJson(body), kJson);
}

void SendError(httplib::Response& res, const absl::Status& status, const OpenAiRequest* request) {
  HttpError e = ToHttpError(status, request);
  SendJson(res, e.http_status, e.body);
}

// "cmpl-" + 24 random hex digits: unique across gateways and restarts, so
// that logs of different requests never share an id.
std::string NewResponseId(absl::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("%s%016x%08x", prefix, rng(), static_cast<uint32_t>(rng()));
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "host:port" -> host (brackets of an IPv6 literal removed) and port.
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("http listen address '", address, "': expected HOST:PORT"));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return absl::OkStatus();
}

// One open SSE stream: the gateway call and what was read from it. Shared by
// the content provider and its releaser (httplib copies both functions).
struct SseStream {
  explicit SseStream(StreamEncoder e) : encoder(std::move(e)) {}
  OpenAiRequest request;
  StreamEncoder encoder;
  grpc::ClientContext context;  // before `reader`: the reader must go first
  std::unique_ptr<grpc::ClientReader<moe::v1::GenerateResponse>> reader;
  moe::v1::GenerateResponse first;  // read before the headers went out
  bool started = false;
  bool finished = false;  // the gateway call's status was read
};

}  // namespace

class HttpServer::Handlers {
 public:
  Handlers(const HttpServerOptions& options, HttpApiBackend backend)
      : options_(options),
        backend_(std::move(backend)),
        stub_(moe::v1::Inference::NewStub(backend_.gateway_channel)),
        created_(UnixSeconds()) {}

  void Register(httplib::Server& server) {
    server.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Generate(req, res, OpenAiEndpoint::kCompletions);
    });
    server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Generate(req, res, OpenAiEndpoint::kChatCompletions);
    });
    server.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) { Models(req, res); });
    server.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) { Models(req, res); });
    server.Get("/health", [this](const httplib::Request&, httplib::Response& res) { Health(res); });
    if (backend_.render_metrics) {
      server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(backend_.render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
      });
    }
    // Answers httplib makes itself (unknown path 404, body too large 413,
    // malformed request 400): the OpenAI error shape instead of an empty body.
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // one of ours
          const int status = res.status;
          HttpError e = ToHttpError(absl::UnknownError(absl::StrCat(req.method, " ", req.path, ": ",
                                                                    status == 404 ? "no such endpoint"
                                                                                  : "request refused")),
                                    nullptr);
          e.body["error"]["type"] = status < 500 ? "invalid_request_error" : "server_error";
          SendJson(res, status, e.body);
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      LOG(ERROR) << "http " << req.method << " " << req.path << ": " << what;
      SendError(res, absl::InternalError(absl::StrCat("internal error: ", what)), nullptr);
    });
  }

 private:

  absl::Status Authorize(const httplib::Request& req) const {
    if (backend_.api_keys == nullptr) return absl::OkStatus();
    return backend_.api_keys->Check(req.get_header_value("Authorization"));
  }

  static int ConnectionSocket(const httplib::Request& req) {
    return FindConnectionSocket(req.remote_addr, req.remote_port, req.local_port);
  }

  void PrepareContext(grpc::ClientContext& context, const httplib::Request& req) const {
    context.set_deadline(rpc::DeadlineIn(options_.request_deadline_ms));
    if (backend_.api_keys != nullptr) context.AddMetadata("authorization", req.get_header_value("Authorization"));
  }

  void Generate(const httplib::Request& req, httplib::Response& res, OpenAiEndpoint endpoint) {
    if (absl::Status s = Authorize(req); !s.ok()) return SendError(res, s, nullptr);
    absl::StatusOr<OpenAiJson> parsed_body = ParseOpenAiBody(req.body);
    if (!parsed_body.ok()) return SendError(res, parsed_body.status(), nullptr);
    const OpenAiJson& body = *parsed_body;
    const bool chat = endpoint == OpenAiEndpoint::kChatCompletions;
    absl::StatusOr<OpenAiRequest> parsed =
        chat ? ParseChatRequest(body, backend_.chat_template) : ParseCompletionRequest(body);
    if (!parsed.ok()) return SendError(res, parsed.status(), nullptr);
    if (parsed->model != backend_.model_info.model_id()) {
      return SendError(res,
                       absl::NotFoundError(absl::StrCat("model: the model '", parsed->model,
                                                        "' does not exist; this server serves '",
                                                        backend_.model_info.model_id(), "'")),
                       nullptr);
    }
    OpenAiResponseContext rc;
    rc.id = NewResponseId(chat ? "chatcmpl-" : "cmpl-");
    rc.created = UnixSeconds();
    rc.model = backend_.model_info.model_id();
    rc.endpoint = endpoint;
    rc.logprobs = parsed->logprobs;
    rc.top_logprobs = parsed->top_logprobs;
    rc.tokenizer = backend_.tokenizer;
    parsed->request.set_request_id(rc.id);
    VLOG(1) << rc.id << ": " << req.path << (parsed->stream ? " (stream)" : "")
            << (parsed->user.empty() ? "" : " user=" + parsed->user);
    if (parsed->stream) return Stream(req, res, std::move(*parsed), std::move(rc));

    grpc::ClientContext context;
    PrepareContext(context, req);
    moe::v1::CompleteResponse response;
    grpc::Status status;
    {
      // A client that leaves cancels the call (the router drops the request).
      PeerWatch watch(ConnectionSocket(req), [&context] { context.TryCancel(); });
      status = stub_->Complete(&context, parsed->request, &response);
      if (watch.hung_up()) {
        VLOG(1) << rc.id << ": the client closed the connection; request cancelled";
        return;
      }
    }
    if (!status.ok()) return SendError(res, rpc::FromGrpcStatus(status), &*parsed);
    SendJson(res, 200, CompletionResponseJson(rc, response));
  }

  // The first message is read before answering, so that errors found before
  // generation (validation, overload, auth) are plain HTTP errors; later
  // errors arrive as a final {"error": ...} event before [DONE].
  void Stream(const httplib::Request& req, httplib::Response& res, OpenAiRequest request, OpenAiResponseContext rc) {
    const int n = request.request.has_n() ? request.request.n() : 1;
    auto stream = std::make_shared<SseStream>(StreamEncoder(std::move(rc), request.include_usage, n));
    stream->request = std::move(request);
    PrepareContext(stream->context, req);
    stream->reader = stub_->Generate(&stream->context, stream->request.request);
    bool first_read;
    {
      // Until the first event (the request may wait in the router's queue),
      // a client that leaves is noticed here; later, by the failed write.
      SseStream* raw = stream.get();
      PeerWatch watch(ConnectionSocket(req), [raw] { raw->context.TryCancel(); });
      first_read = stream->reader->Read(&stream->first);
      if (watch.hung_up()) {
        moe::v1::GenerateResponse ignored;
        while (stream->reader->Read(&ignored)) {
        }
        stream->reader->Finish();
        stream->finished = true;
        return;
      }
    }
    if (!first_read) {
      const grpc::Status status = stream->reader->Finish();
      stream->finished = true;
      if (!status.ok()) return SendError(res, rpc::FromGrpcStatus(status), &stream->request);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // proxies: pass events through at once
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](size_t /*offset*/, httplib::DataSink& sink) {
          std::string out;
          if (!stream->started) {
            stream->started = true;
            out = stream->encoder.Start();
            if (stream->finished) {
              out += stream->encoder.Finish();  // an empty but successful stream
            } else {
              out += stream->encoder.Encode(stream->first);
            }
          } else {
            moe::v1::GenerateResponse message;
            if (stream->reader->Read(&message)) {
              out = stream->encoder.Encode(message);
            } else {
              const grpc::Status status = stream->reader->Finish();
              stream->finished = true;
              out = status.ok() ? stream->encoder.Finish()
                                : StreamEncoder::Error(rpc::FromGrpcStatus(status), &stream->request);
            }
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client left
          if (stream->finished) sink.done();
          return true;
        },
        [stream](bool /*success*/) {
          if (stream->finished) return;
          // The client left mid-stream: cancel the gateway call (which frees
          // the router's sequence) and collect its status.
          stream->context.TryCancel();
          moe::v1::GenerateResponse ignored;
          while (stream->reader->Read(&ignored)) {
          }
          stream->reader->Finish();
          stream->finished = true;
        });
  }

  OpenAiJson ModelJson() const {
    OpenAiJson m = OpenAiJson::object();
    m["id"] = backend_.model_info.model_id();
    m["object"] = "model";
    m["created"] = created_;
    m["owned_by"] = "moe-cluster";
    m["max_model_len"] = backend_.model_info.context_length();
    return m;
  }

  void Models(const httplib::Request& req, httplib::Response& res) {
    if (absl::Status s = Authorize(req); !s.ok()) return SendError(res, s, nullptr);
    if (req.matches.size() > 1) {  // /v1/models/{id}
      if (req.matches[1] != backend_.model_info.model_id()) {
        return SendError(res, absl::NotFoundError(absl::StrCat("model: the model '", req.matches[1].str(),
                                                               "' does not exist")),
                         nullptr);
      }
      return SendJson(res, 200, ModelJson());
    }
    OpenAiJson list = OpenAiJson::object();
    list["object"] = "list";
    list["data"] = OpenAiJson::array({ModelJson()});
    SendJson(res, 200, list);
  }

  // 200 when the gateway takes requests: not draining, and some router
  // answers that it can serve (every expert has a healthy worker). The body
  // lists each router's answer and each expert worker as the routers see it
  // (the gateway does not dial workers). Routers are asked in parallel, each
  // with its own deadline.
  void Health(httplib::Response& res) {
    struct Pending {
      grpc::ClientContext context;
      moe::internal::v1::GetLoadRequest request;
      moe::internal::v1::LoadReport response;
      grpc::Status status;
    };
    const auto& routers = backend_.routers->routers();
    std::vector<Pending> pending(routers.size());
    absl::Mutex mu;
    size_t remaining = routers.size();  // guarded by mu
    for (size_t i = 0; i < routers.size(); ++i) {
      Pending& p = pending[i];
      p.context.set_deadline(rpc::DeadlineIn(options_.health_check_timeout_ms));
      routers[i]->stub->async()->GetLoad(&p.context, &p.request, &p.response, [&, i](grpc::Status s) {
        absl::MutexLock lock(&mu);
        pending[i].status = std::move(s);
        --remaining;
      });
    }
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](size_t* left) { return *left == 0; }, &remaining));
    }
    const bool accepting = !backend_.accepting || backend_.accepting();
    bool any_router = false;
    OpenAiJson body = OpenAiJson::object();
    body["status"] = "ok";
    body["model"] = backend_.model_info.model_id();
    body["routers"] = OpenAiJson::object();
    body["workers"] = OpenAiJson::object();
    for (size_t i = 0; i < routers.size(); ++i) {
      const Pending& p = pending[i];
      const bool serving = p.status.ok() && p.response.serving();
      any_router |= serving;
      body["routers"][routers[i]->address] =
          !p.status.ok() ? absl::StrCat("UNREACHABLE: ", p.status.error_message())
                         : (serving ? std::string("SERVING") : std::string("NOT_SERVING"));
      for (const moe::internal::v1::WorkerHealth& w : p.response.workers()) {
        OpenAiJson& slot = body["workers"][w.address()];
        if (!w.healthy()) {
          slot = absl::StrCat("UNREACHABLE: ", w.detail());
        } else if (slot.is_null()) {
          slot = "SERVING";
        }
      }
    }
    if (backend_.model_info.workers_size() == 1 && backend_.model_info.workers(0) == "local") {
      body["workers"]["local"] = any_router ? "SERVING" : "NOT_SERVING";
    }
    const bool ok = accepting && any_router;
    if (!accepting) body["status"] = "draining";
    else if (!ok) body["status"] = "unavailable";
    SendJson(res, ok ? 200 : 503, body);
  }

  const HttpServerOptions options_;
  const HttpApiBackend backend_;
  std::unique_ptr<moe::v1::Inference::Stub> stub_;
  const int64_t created_;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpApiBackend backend) {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(options.listen_address, &host, &port); !s.ok()) return s;
  if (options.num_threads < 1) return absl::InvalidArgumentError("http threads: must be >= 1");
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  server->handlers_ = std::make_unique<Handlers>(options, std::move(backend));
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("http: a TLS certificate needs its key and a key its certificate");
  }
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(server->certificate_,
                     ReloadingCertificate::Load(options.tls_cert_file, options.tls_key_file,
                                                std::chrono::seconds(options.tls_reload_interval_s)));
    ReloadingCertificate* certificate = server->certificate_.get();
    const std::string client_ca = options.tls_client_ca_file;
    auto ssl = std::make_unique<httplib::SSLServer>([certificate, client_ca](SSL_CTX& ctx) {
      SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      certificate->Install(&ctx);
      if (!client_ca.empty()) {
        if (SSL_CTX_load_verify_locations(&ctx, client_ca.c_str(), nullptr) != 1) return false;
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      }
      return true;
    });
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("http: cannot serve TLS with certificate ", options.tls_cert_file,
                                                     " and key ", options.tls_key_file,
                                                     options.tls_client_ca_file.empty()
                                                         ? std::string()
                                                         : absl::StrCat(" (client CA ", options.tls_client_ca_file, ")")));
    }
    server->server_ = std::move(ssl);
  } else {
    server->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *server->server_;
  const size_t threads = static_cast<size_t>(options.num_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(options.max_body_bytes);
  server->handlers_->Register(http);
  if (port == 0) {
    port = http.bind_to_any_port(host);
    if (port < 0) return absl::UnavailableError(absl::StrCat("http: cannot listen on ", options.listen_address));
  } else if (!http.bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("http: cannot listen on ", options.listen_address));
  }
  server->address_ = absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
  server->listener_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() before the loop runs would be lost (and Join would wait forever).
  while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!options.address_file.empty()) {
    // Written whole under a temporary name, then renamed: a reader never
    // sees a partial address.
    const std::string tmp = options.address_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << server->address_ << "\n";
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
    if (std::rename(tmp.c_str(), options.address_file.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot write ", options.address_file));
    }
  }
  LOG(INFO) << "OpenAI-compatible HTTP API on http://" << server->address_;
  return server;
}

void HttpServer::StopAccepting() {
  if (server_ != nullptr) server_->stop();
}

void HttpServer::Join() {
  if (listener_.joinable()) listener_.join();
}

HttpServer::~HttpServer() {
  StopAccepting();
  Join();
}

}  // namespace moe
