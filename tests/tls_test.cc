// TLS on every listener and mutual TLS between the services, on a local
// cluster (two expert workers, a router, a gateway with the HTTP API) started
// with certificates this test makes with the openssl command-line tool:
//
//   ca.pem       the cluster's CA
//   leaf.pem     issued by it for 127.0.0.1 / localhost (server and client use)
//   other-ca.pem a second CA, and rogue.pem issued by it for the same names
//   expired.pem  issued by ca.pem, valid only in January 2020
//   renewed.pem  issued by ca.pem for the same names, CN "moe-renewed"
//
// Checks: the golden greedy ids through TLS; plaintext and untrusting
// clients refused; the router and the workers refuse clients without a
// certificate from the CA; HTTPS; --tls-client-ca on the gateway; and every
// bad file stops a process at start-up with a message naming flag and path.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "deploy/local/cluster.h"
#include "deploy/local/process_group.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "moe/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "proto/rpc_util.h"
#include "proto/tls.h"
#include "tests/shell_command.h"

namespace moe {
namespace {

using ::testing::HasSubstr;

const std::string kModel = std::string(MOE_TESTDATA_DIR) + "/tiny-mixtral";

using CommandResult = test::ShellResult;  // stdout and stderr

CommandResult RunShell(const std::string& command) { return test::RunShellCommand(command); }

// The certificates of the header comment, in `dir`.
::testing::AssertionResult MakeCertificates(const std::string& dir) {
  const std::string script = R"(set -e
cd ")" + dir + R"("
cat > leaf.ext <<'EOF'
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
EOF
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=moe test CA"
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=other CA"
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=moe"
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext
openssl req -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.csr -subj "/CN=moe"
openssl x509 -req -in rogue.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -out rogue.pem -days 2 \
  -extfile leaf.ext
cat > ca.cnf <<'EOF'
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any_name
[ any_name ]
commonName = supplied
EOF
: > index.txt
echo 1000 > serial
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in leaf.csr -out expired.pem -notext \
  -startdate 20200101000000Z -enddate 20200201000000Z
openssl req -newkey rsa:2048 -nodes -keyout renewed.key -out renewed.csr -subj "/CN=moe-renewed"
openssl x509 -req -in renewed.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out renewed.pem -days 2 \
  -extfile leaf.ext
echo "not a certificate" > garbage.pem
)";
  const std::string path = dir + "/make-certs.sh";
  std::ofstream(path) << script;
  const CommandResult r = RunShell("bash " + path);
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "openssl failed: " << r.output;
  return ::testing::AssertionSuccess();
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The HTTPS clients here write to servers that refuse them mid-handshake.
    rpc::IgnoreBrokenPipes();
    char dir[] = "/tmp/moe-tls-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_TRUE(MakeCertificates(dir_));
    cluster_ = new LocalCluster(ClusterOptions(/*workers=*/2, dir_ + "/cluster", File("leaf.pem"), File("leaf.key")));
    const absl::Status up = cluster_->Up();
    ASSERT_TRUE(up.ok()) << up;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  static std::string File(const std::string& name) { return dir_ + "/" + name; }

  // A cluster with the HTTP API on, mutual TLS with `cert`/`key` and ca.pem.
  static LocalClusterOptions ClusterOptions(int workers, const std::string& run_dir, const std::string& cert,
                                            const std::string& key) {
    LocalClusterOptions o;
    o.model_dir = kModel;
    o.num_workers = workers;
    o.bin_dir = MOE_BIN_DIR;
    o.worker_threads = 1;
    o.router_threads = 1;
    o.http_port = 0;
    o.startup_timeout_ms = 60000;
    o.run_dir = run_dir;
    o.tls.cert_file = cert;
    o.tls.key_file = key;
    o.tls.ca_file = File("ca.pem");
    return o;
  }

  // Client TLS: trusting `ca` (empty: plaintext), presenting `cert` if set.
  static rpc::TlsConfig ClientTls(const std::string& ca, const std::string& cert = "") {
    rpc::TlsFiles f;
    if (!ca.empty()) f.ca_file = File(ca + ".pem");
    if (!cert.empty()) {
      f.cert_file = File(cert + ".pem");
      f.key_file = File(cert + ".key");
    }
    auto tls = rpc::LoadTls(f, rpc::TlsRole::kClient);
    EXPECT_TRUE(tls.ok()) << tls.status();
    return tls.ok() ? *tls : rpc::TlsConfig{};
  }

  // One health check of `address` over `tls`: the status of the call.
  static grpc::Status Check(const std::string& address, const rpc::TlsConfig& tls) {
    auto stub = grpc::health::v1::Health::NewStub(rpc::MakeChannel(address, &tls));
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(5000));
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    if (s.ok() && resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "answered, but not SERVING");
    }
    return s;
  }

  static std::string dir_;
  static LocalCluster* cluster_;
};

std::string TlsTest::dir_;
LocalCluster* TlsTest::cluster_ = nullptr;

TEST_F(TlsTest, GoldenGreedyIdsThroughTlsAndMutualTls) {
  std::ifstream in(kModel + "/golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const rpc::TlsConfig tls = ClientTls("ca");
  auto stub = moe::v1::Inference::NewStub(rpc::MakeChannel(cluster_->gateway_address(), &tls));
  for (const auto& c : golden["cases"]) {
    const auto want = c["greedy_ids"].get<std::vector<uint32_t>>();
    moe::v1::GenerateRequest req;
    for (uint32_t id : c["prompt_ids"].get<std::vector<uint32_t>>()) req.mutable_token_ids()->add_ids(id);
    req.set_max_tokens(static_cast<int>(want.size()));
    req.mutable_sampling()->set_temperature(0);
    req.mutable_sampling()->set_ignore_eos(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(60000));
    ctx.set_wait_for_ready(true);
    auto reader = stub->Generate(&ctx, req);
    moe::v1::GenerateResponse msg;
    std::vector<uint32_t> ids;
    while (reader->Read(&msg)) {
      for (const auto& t : msg.tokens()) ids.push_back(t.id());
    }
    const grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(ids, want) << c["prompt_text"];
  }
}

TEST_F(TlsTest, GatewayRefusesPlaintextAndClientsThatDoNotTrustIt) {
  EXPECT_TRUE(Check(cluster_->gateway_address(), ClientTls("ca")).ok());
  // The gateway's public listener asks no client certificate by default.
  const grpc::Status plain = Check(cluster_->gateway_address(), rpc::TlsConfig{});
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
  const grpc::Status untrusting = Check(cluster_->gateway_address(), ClientTls("other-ca"));
  EXPECT_EQ(untrusting.error_code(), grpc::StatusCode::UNAVAILABLE) << untrusting.error_message();
  // The name is checked: the certificate covers localhost, not other.example.
  rpc::TlsConfig named = ClientTls("ca");
  named.files.server_name = "localhost";
  EXPECT_TRUE(Check(cluster_->gateway_address(), named).ok());
  named.files.server_name = "other.example";
  EXPECT_EQ(Check(cluster_->gateway_address(), named).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, RouterAndWorkersAcceptOnlyClientCertificatesFromTheCa) {
  std::vector<std::string> internal = cluster_->worker_addresses();
  internal.push_back(cluster_->router_address());
  ASSERT_EQ(internal.size(), 3u);
  for (const std::string& address : internal) {
    SCOPED_TRACE(address);
    EXPECT_TRUE(Check(address, ClientTls("ca", "leaf")).ok());
    EXPECT_EQ(Check(address, rpc::TlsConfig{}).error_code(), grpc::StatusCode::UNAVAILABLE);  // plaintext
    EXPECT_EQ(Check(address, ClientTls("ca")).error_code(), grpc::StatusCode::UNAVAILABLE);   // no certificate
    // A certificate for the right names from another CA.
    EXPECT_EQ(Check(address, ClientTls("ca", "rogue")).error_code(), grpc::StatusCode::UNAVAILABLE);
    // moe-health-probe, as the Kubernetes exec probes run it.
    const std::string probe = "timeout 30 " + std::string(MOE_BIN_DIR) + "/moe-health-probe --timeout-ms 5000" +
                              " --address " + address + " --tls-ca " + File("ca.pem");
    const CommandResult ok = RunShell(probe + " --tls-cert " + File("leaf.pem") + " --tls-key " + File("leaf.key"));
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_THAT(ok.output, HasSubstr("SERVING"));
    const CommandResult refused = RunShell(probe);
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_THAT(refused.output, HasSubstr(address + ": UNAVAILABLE"));
  }
}

TEST_F(TlsTest, HttpsServesTheApiAndPlainHttpGetsNoAnswer) {
  const std::string& a = cluster_->gateway_http_address();
  const std::string host = a.substr(0, a.rfind(':'));
  const int port = std::stoi(a.substr(a.rfind(':') + 1));
  httplib::SSLClient https(host, port);
  https.set_ca_cert_path(File("ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  https.set_read_timeout(60, 0);
  auto health = https.Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200) << health->body;
  // /health reached the router and both workers over mutual TLS.
  const nlohmann::json h = nlohmann::json::parse(health->body);
  EXPECT_EQ(h["workers"].size(), 2u) << health->body;
  for (const auto& [address, state] : h["workers"].items()) EXPECT_EQ(state, "SERVING") << address;
  const nlohmann::json body = {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 4},
                               {"temperature", 0}};
  auto completion = https.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(completion) << httplib::to_string(completion.error());
  EXPECT_EQ(completion->status, 200) << completion->body;
  EXPECT_EQ(nlohmann::json::parse(completion->body)["usage"]["completion_tokens"], 4) << completion->body;

  httplib::SSLClient untrusting(host, port);
  untrusting.set_ca_cert_path(File("other-ca.pem").c_str());
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/health"));

  httplib::Client plain(host, port);
  plain.set_read_timeout(5, 0);
  auto r = plain.Get("/health");
  EXPECT_TRUE(!r || r->status != 200);
}

TEST_F(TlsTest, GatewaySurvivesHttpsClientsThatLeaveMidStream) {
  const std::string& a = cluster_->gateway_http_address();
  const std::string host = a.substr(0, a.rfind(':'));
  const int port = std::stoi(a.substr(a.rfind(':') + 1));
  const nlohmann::json body = {{"model", "tiny-mixtral"}, {"prompt", "Hello"}, {"max_tokens", 400},
                               {"ignore_eos", true}, {"stream", true}};
  for (int i = 0; i < 4; ++i) {
    httplib::SSLClient https(host, port);
    https.set_ca_cert_path(File("ca.pem").c_str());
    https.enable_server_certificate_verification(true);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    int chunks = 0;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
    https.send(req);  // ends with Canceled once the receiver says stop
    EXPECT_GE(chunks, 1);
  }  // each client closes its connection with the stream still running
  // The gateway (which ignores SIGPIPE, as TLS writes to a closed peer raise
  // it) is still serving, and no process of the cluster exited.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  httplib::SSLClient https(host, port);
  https.set_ca_cert_path(File("ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  auto health = https.Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_TRUE(cluster_->processes().Reap().empty());
}

TEST_F(TlsTest, GatewayWithTlsClientCaRequiresClientCertificates) {
  LocalClusterOptions o = ClusterOptions(/*workers=*/0, dir_ + "/client-ca", File("leaf.pem"), File("leaf.key"));
  o.extra_gateway_flags = {"--tls-client-ca=" + File("ca.pem")};
  LocalCluster cluster(o);
  const absl::Status up = cluster.Up();  // the launcher's own checks present leaf.pem
  ASSERT_TRUE(up.ok()) << up;
  EXPECT_TRUE(Check(cluster.gateway_address(), ClientTls("ca", "leaf")).ok());
  EXPECT_EQ(Check(cluster.gateway_address(), ClientTls("ca")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Check(cluster.gateway_address(), ClientTls("ca", "rogue")).error_code(), grpc::StatusCode::UNAVAILABLE);

  const std::string& a = cluster.gateway_http_address();
  const std::string host = a.substr(0, a.rfind(':'));
  const int port = std::stoi(a.substr(a.rfind(':') + 1));
  httplib::SSLClient with_cert(host, port, File("leaf.pem"), File("leaf.key"));
  with_cert.set_ca_cert_path(File("ca.pem").c_str());
  with_cert.enable_server_certificate_verification(true);
  auto ok = with_cert.Get("/health");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);
  httplib::SSLClient without_cert(host, port);
  without_cert.set_ca_cert_path(File("ca.pem").c_str());
  without_cert.enable_server_certificate_verification(true);
  EXPECT_FALSE(without_cert.Get("/health"));
}

TEST_F(TlsTest, LoadgenOverGrpcTlsAndHttps) {
  const std::string bin = std::string(MOE_BIN_DIR) + "/moe-loadgen";
  const std::string common = " --vocab-size 512 --concurrency 2 --num-requests 6 --input-len 8 --output-len 4";
  // gRPC with the CA, and the router's GetLoad over mutual TLS for the MoE figures.
  const std::string grpc_json = File("grpc.json");
  const CommandResult g = RunShell("timeout 120 " + bin + " --gateway " + cluster_->gateway_address() +
                                   " --router " + cluster_->router_address() + " --tls-ca " + File("ca.pem") +
                                   " --tls-cert " + File("leaf.pem") + " --tls-key " + File("leaf.key") + common +
                                   " --json " + grpc_json);
  ASSERT_EQ(g.exit_code, 0) << g.output;
  std::ifstream grpc_in(grpc_json);
  const nlohmann::json gj = nlohmann::json::parse(grpc_in);
  EXPECT_EQ(gj["completed"], 6);
  EXPECT_EQ(gj["failed"], 0);
  EXPECT_EQ(gj["moe"]["status"], "ok") << gj["moe"];
  // HTTPS, verified against the CA.
  const std::string http_json = File("http.json");
  const CommandResult h = RunShell("timeout 120 " + bin + " --backend http --base-url https://" +
                                   cluster_->gateway_http_address() + " --tls-ca " + File("ca.pem") + common +
                                   " --json " + http_json);
  ASSERT_EQ(h.exit_code, 0) << h.output;
  std::ifstream http_in(http_json);
  const nlohmann::json hj = nlohmann::json::parse(http_in);
  EXPECT_EQ(hj["completed"], 6);
  EXPECT_EQ(hj["failed"], 0);
  // Without the CA nothing gets through: every request fails.
  const CommandResult u = RunShell("timeout 120 " + bin + " --gateway " + cluster_->gateway_address() +
                                   " --tls" + common + " --json " + File("untrusted.json"));
  EXPECT_NE(u.exit_code, 0) << u.output;
}

// A renewed certificate written over the files is served to new connections
// without a restart (the files are read again every --tls-reload-interval-s).
TEST_F(TlsTest, RenewedCertificateIsUsedWithoutRestart) {
  const std::string dir = dir_ + "/rotation";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(File("leaf.pem"), dir + "/tls.crt");
  std::filesystem::copy_file(File("leaf.key"), dir + "/tls.key");
  ProcessGroup processes;
  ASSERT_TRUE(processes
                  .Spawn("worker",
                         {std::string(MOE_BIN_DIR) + "/moe-expert-worker", "--model=" + kModel, "--experts=all",
                          "--listen=127.0.0.1:0", "--threads=1", "--address-file=" + dir + "/addr",
                          "--tls-cert=" + dir + "/tls.crt", "--tls-key=" + dir + "/tls.key",
                          "--tls-ca=" + File("ca.pem"), "--tls-reload-interval-s=1"},
                         dir + "/worker.log")
                  .ok());
  std::string address;
  for (int i = 0; i < 600 && address.empty(); ++i) {
    std::ifstream in(dir + "/addr");
    std::getline(in, address);
    if (address.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(address.empty());
  // The common name of the certificate the server presents to a new channel.
  auto served_name = [&]() -> std::string {
    const rpc::TlsConfig tls = ClientTls("ca", "leaf");
    auto stub = grpc::health::v1::Health::NewStub(rpc::MakeChannel(address, &tls));
    grpc::ClientContext ctx;
    ctx.set_deadline(rpc::DeadlineIn(10000));
    ctx.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    if (!s.ok()) return "error: " + s.error_message();
    const auto names = ctx.auth_context()->FindPropertyValues("x509_common_name");
    return names.empty() ? "no name" : std::string(names[0].data(), names[0].size());
  };
  EXPECT_EQ(served_name(), "moe");
  // Renewal: new files replace the old ones whole (as a Secret volume update does).
  std::filesystem::copy_file(File("renewed.key"), dir + "/tls.key.new");
  std::filesystem::copy_file(File("renewed.pem"), dir + "/tls.crt.new");
  std::filesystem::rename(dir + "/tls.key.new", dir + "/tls.key");
  std::filesystem::rename(dir + "/tls.crt.new", dir + "/tls.crt");
  std::string now;
  for (int i = 0; i < 100; ++i) {  // 10 s at most; the reload interval is 1 s
    now = served_name();
    if (now == "moe-renewed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(now, "moe-renewed");
  EXPECT_TRUE(processes.Reap().empty());  // the same process throughout
}

// The gateway's HTTPS listener picks up a renewed certificate too.
TEST_F(TlsTest, GatewayHttpsServesARenewedCertificateWithoutRestart) {
  const std::string dir = dir_ + "/https-rotation";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(File("leaf.pem"), dir + "/tls.crt");
  std::filesystem::copy_file(File("leaf.key"), dir + "/tls.key");
  LocalClusterOptions o = ClusterOptions(/*workers=*/0, dir + "/cluster", dir + "/tls.crt", dir + "/tls.key");
  o.extra_router_flags = {"--tls-reload-interval-s=1"};
  o.extra_gateway_flags = {"--tls-reload-interval-s=1"};
  LocalCluster cluster(o);
  const absl::Status up = cluster.Up();
  ASSERT_TRUE(up.ok()) << up;
  // The subject of the certificate the HTTPS listener presents, as openssl sees it.
  auto https_subject = [&] {
    return RunShell("openssl s_client -connect " + cluster.gateway_http_address() + " -CAfile " + File("ca.pem") +
                    " </dev/null 2>/dev/null | openssl x509 -noout -subject")
        .output;
  };
  EXPECT_THAT(https_subject(), HasSubstr("CN = moe\n"));
  std::filesystem::copy_file(File("renewed.key"), dir + "/tls.key.new");
  std::filesystem::copy_file(File("renewed.pem"), dir + "/tls.crt.new");
  std::filesystem::rename(dir + "/tls.key.new", dir + "/tls.key");
  std::filesystem::rename(dir + "/tls.crt.new", dir + "/tls.crt");
  std::string subject;
  for (int i = 0; i < 100; ++i) {  // 10 s at most; the check interval is 1 s
    subject = https_subject();
    if (subject.find("moe-renewed") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(subject, HasSubstr("CN = moe-renewed"));
  // And it still answers over HTTPS.
  const std::string& a = cluster.gateway_http_address();
  httplib::SSLClient https(a.substr(0, a.rfind(':')), std::stoi(a.substr(a.rfind(':') + 1)));
  https.set_ca_cert_path(File("ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  auto health = https.Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_TRUE(cluster.processes().Reap().empty());
}

TEST_F(TlsTest, BadTlsFilesStopStartUpNamingFlagAndFile) {
  const std::string worker = std::string(MOE_BIN_DIR) + "/moe-expert-worker --model " + kModel +
                             " --experts all --listen 127.0.0.1:0";
  struct Case {
    std::string flags;
    std::vector<std::string> want;  // substrings of the error
  };
  const std::vector<Case> cases = {
      {"--tls-cert " + File("leaf.pem"), {"--tls-cert is set without --tls-key"}},
      {"--tls-key " + File("leaf.key"), {"--tls-key is set without --tls-cert"}},
      {"--tls-ca " + File("ca.pem"), {"--tls-ca is set without --tls-cert"}},
      {"--tls-cert " + File("missing.pem") + " --tls-key " + File("leaf.key"),
       {"--tls-cert " + File("missing.pem"), "cannot be read"}},
      {"--tls-cert " + File("garbage.pem") + " --tls-key " + File("leaf.key"),
       {"--tls-cert " + File("garbage.pem"), "no PEM certificate"}},
      {"--tls-cert " + File("leaf.pem") + " --tls-key " + File("rogue.key"),
       {"--tls-key " + File("rogue.key"), "is not the private key of the certificate in --tls-cert"}},
      {"--tls-cert " + File("leaf.pem") + " --tls-key " + File("leaf.pem"),
       {"--tls-key " + File("leaf.pem"), "no readable PEM private key"}},
      {"--tls-cert " + File("expired.pem") + " --tls-key " + File("leaf.key"),
       {"--tls-cert " + File("expired.pem"), "expired"}},
      {"--tls-cert " + File("leaf.pem") + " --tls-key " + File("leaf.key") + " --tls-ca " + File("garbage.pem"),
       {"--tls-ca " + File("garbage.pem"), "no PEM certificate"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flags);
    const CommandResult r = RunShell("timeout 30 " + worker + " " + c.flags);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    for (const std::string& w : c.want) EXPECT_THAT(r.output, HasSubstr(w));
  }
  // moe-cluster checks the files once, before starting anything.
  const CommandResult r = RunShell("timeout 30 " + std::string(MOE_BIN_DIR) + "/moe-cluster up --model " + kModel +
                                   " --tls-cert " + File("leaf.pem") + " --tls-key " + File("rogue.key"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is not the private key"));
}

}  // namespace
}  // namespace moe
