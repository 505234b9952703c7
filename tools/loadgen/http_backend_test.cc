#include "tools/loadgen/http_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tools/loadgen/sse.h"

namespace moe::loadgen {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Parse(const std::vector<std::string>& pieces) {
  std::vector<std::string> events;
  SseParser parser([&](const std::string& data) { events.push_back(data); });
  for (const std::string& p : pieces) parser.Feed(p);
  parser.Finish();
  return events;
}

TEST(SseParserTest, EventsAcrossFeedsAndLineEndings) {
  EXPECT_THAT(Parse({"data: {\"a\":1}\n\n", "data: [DONE]\n\n"}), ElementsAre("{\"a\":1}", "[DONE]"));
  EXPECT_THAT(Parse({"da", "ta: x", "y\r", "\n\r\ndata:z\r\r"}), ElementsAre("xy", "z"));
  EXPECT_THAT(Parse({"data: one\ndata: two\n\n"}), ElementsAre("one\ntwo"));
  EXPECT_THAT(Parse({": keep-alive\n\nevent: message\nid: 3\ndata: x\n\n"}), ElementsAre("x"));
  EXPECT_THAT(Parse({"database: no\n\n"}), ElementsAre());
  EXPECT_THAT(Parse({"data: unterminated"}), ElementsAre("unterminated"));
  EXPECT_THAT(Parse({"data\n\n"}), ElementsAre(""));
}

TEST(CompletionRequestBodyTest, TokenIdsOrText) {
  RequestSpec spec;
  spec.token_ids = {5, 6};
  spec.max_tokens = 7;
  const nlohmann::json ids = CompletionRequestBody(spec, "m");
  EXPECT_EQ(ids["prompt"], nlohmann::json::array({5, 6}));
  EXPECT_EQ(ids["max_tokens"], 7);
  EXPECT_EQ(ids["stream"], true);
  EXPECT_EQ(ids["stream_options"]["include_usage"], true);
  EXPECT_EQ(ids["ignore_eos"], true);
  EXPECT_EQ(ids["model"], "m");
  spec.token_ids.clear();
  spec.text = "hi";
  spec.ignore_eos = false;
  const nlohmann::json text = CompletionRequestBody(spec, "");
  EXPECT_EQ(text["prompt"], "hi");
  EXPECT_FALSE(text.contains("ignore_eos"));
  EXPECT_FALSE(text.contains("model"));
}

// A tiny OpenAI-style streaming server: /v1/completions streams one chunk per
// token (10 ms apart), then usage and [DONE]; /fail answers 503; /cut ends
// the stream without a finish reason.
class SseServer {
 public:
  SseServer() {
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      last_body_ = nlohmann::json::parse(req.body);
      const int n = last_body_["max_tokens"].get<int>();
      res.set_chunked_content_provider("text/event-stream", [n](size_t, httplib::DataSink& sink) {
        for (int i = 0; i < n; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          const nlohmann::json chunk = {
              {"object", "text_completion"},
              {"choices", {{{"index", 0}, {"text", "t" + std::to_string(i)},
                            {"finish_reason", i + 1 == n ? nlohmann::json("length") : nlohmann::json(nullptr)}}}}};
          const std::string event = "data: " + chunk.dump() + "\n\n";
          sink.write(event.data(), event.size());
        }
        const std::string usage =
            "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 11, \"completion_tokens\": " + std::to_string(n) +
            "}}\n\ndata: [DONE]\n\n";
        sink.write(usage.data(), usage.size());
        sink.done();
        return true;
      });
    });
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"object\": \"list\", \"data\": [{\"id\": \"tiny\", \"object\": \"model\"}]}",
                      "application/json");
    });
    server_.Post("/fail", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("{\"error\": {\"message\": \"overloaded\"}}", "application/json");
    });
    server_.Post("/cut", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("data: {\"choices\": [{\"text\": \"x\", \"finish_reason\": null}]}\n\n", "text/event-stream");
    });
    server_.Post("/error", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("data: {\"error\": {\"message\": \"boom\"}}\n\n", "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~SseServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const nlohmann::json& last_body() const { return last_body_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  nlohmann::json last_body_;
};

RequestRecord SendOne(const std::string& url, const std::string& endpoint, int max_tokens) {
  HttpBackendOptions o;
  o.base_url = url;
  o.endpoint = endpoint;
  o.connections = 2;
  auto backend = HttpBackend::Create(o);
  EXPECT_TRUE(backend.ok()) << backend.status();
  RequestSpec spec;
  spec.index = 4;
  spec.token_ids = {1, 2, 3};
  spec.max_tokens = max_tokens;
  spec.timeout_ms = 10000;
  RequestRecord out;
  absl::Notification done;
  (*backend)->Start(spec, Clock::now(), [&](RequestRecord r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

TEST(HttpBackendTest, StreamsTokensAndUsage) {
  SseServer server;
  const RequestRecord r = SendOne(server.url(), "/v1/completions", 5);
  EXPECT_TRUE(r.ok) << r.status << " " << r.error_message;
  EXPECT_EQ(r.status, "OK");
  EXPECT_EQ(r.index, 4);
  EXPECT_EQ(r.events.size(), 5u);
  EXPECT_EQ(r.output_tokens, 5);
  EXPECT_EQ(r.prompt_tokens, 11);
  EXPECT_GE(r.ttft_s(), 0.009);
  EXPECT_GE(r.e2e_s(), 0.049);
  EXPECT_GT(r.tpot_s(), 0.005);
  EXPECT_EQ(server.last_body()["prompt"], nlohmann::json::array({1, 2, 3}));
}

TEST(HttpBackendTest, FailuresByHttpStatusAndStream) {
  SseServer server;
  const RequestRecord busy = SendOne(server.url(), "/fail", 1);
  EXPECT_FALSE(busy.ok);
  EXPECT_EQ(busy.status, "HTTP 503");
  EXPECT_THAT(busy.error_message, HasSubstr("overloaded"));
  const RequestRecord missing = SendOne(server.url(), "/nowhere", 1);
  EXPECT_EQ(missing.status, "HTTP 404");
  const RequestRecord cut = SendOne(server.url(), "/cut", 1);
  EXPECT_EQ(cut.status, "INCOMPLETE");
  const RequestRecord error = SendOne(server.url(), "/error", 1);
  EXPECT_EQ(error.status, "STREAM_ERROR");
  EXPECT_EQ(error.error_message, "boom");
}

TEST(HttpBackendTest, ConnectionRefused) {
  // A port that was free a moment ago: bound, never listened on, closed.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  const RequestRecord r = SendOne("http://127.0.0.1:" + std::to_string(port), "/v1/completions", 1);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.status, HasSubstr("TRANSPORT"));
}

TEST(HttpBackendTest, FirstModelOfTheList) {
  SseServer server;
  HttpBackendOptions options;
  options.base_url = server.url();
  auto model = QueryHttpModel(options, 5000);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*model, "tiny");
  options.base_url = server.url() + "/nothing";
  EXPECT_FALSE(QueryHttpModel(options, 5000).ok());
}

TEST(HttpBackendTest, RejectsBadUrls) {
  HttpBackendOptions o;
  o.base_url = "127.0.0.1:80";
  EXPECT_FALSE(HttpBackend::Create(o).ok());
  o.base_url = "http://";
  EXPECT_FALSE(HttpBackend::Create(o).ok());
}

}  // namespace
}  // namespace moe::loadgen
