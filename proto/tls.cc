#include "proto/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace moe::rpc {
namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM data found";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

absl::Status Bad(absl::string_view flag, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": ", why));
}

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Bad(flag, path, "cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return Bad(flag, path, "cannot be read");
  if (ss.str().empty()) return Bad(flag, path, "is empty");
  return ss.str();
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// Every certificate in `pem`; at least one.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view flag, const std::string& path,
                                                       const std::string& pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certs;
  ERR_clear_error();
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the end of the data reads as an error
  if (certs.empty()) return Bad(flag, path, "holds no PEM certificate");
  return certs;
}

absl::Status CheckValidity(absl::string_view flag, const std::string& path, X509* cert) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) return Bad(flag, path, "the certificate is not valid yet");
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) return Bad(flag, path, "the certificate has expired");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsConfig> LoadTls(const TlsFiles& files, TlsRole role) {
  TlsConfig tls;
  tls.files = files;
  const bool has_cert = !files.cert_file.empty(), has_key = !files.key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(has_cert ? "--tls-cert is set without --tls-key (they go together)"
                                               : "--tls-key is set without --tls-cert (they go together)");
  }
  if (role == TlsRole::kServer && !files.ca_file.empty() && !has_cert) {
    return absl::InvalidArgumentError(
        "--tls-ca is set without --tls-cert and --tls-key: a server verifying its clients' certificates (mutual "
        "TLS) needs its own certificate");
  }
  if (has_cert) {
    auto cert_pem = ReadFile("--tls-cert", files.cert_file);
    if (!cert_pem.ok()) return cert_pem.status();
    auto key_pem = ReadFile("--tls-key", files.key_file);
    if (!key_pem.ok()) return key_pem.status();
    auto certs = ParseCertificates("--tls-cert", files.cert_file, *cert_pem);
    if (!certs.ok()) return certs.status();
    if (absl::Status s = CheckValidity("--tls-cert", files.cert_file, (*certs)[0].get()); !s.ok()) return s;
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
    ERR_clear_error();
    std::unique_ptr<EVP_PKEY, KeyDeleter> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (key == nullptr) {
      return Bad("--tls-key", files.key_file, absl::StrCat("holds no readable PEM private key (", OpenSslError(), ")"));
    }
    if (X509_check_private_key((*certs)[0].get(), key.get()) != 1) {
      ERR_clear_error();
      return Bad("--tls-key", files.key_file,
                 absl::StrCat("is not the private key of the certificate in --tls-cert ", files.cert_file));
    }
    tls.cert_pem = std::move(*cert_pem);
    tls.key_pem = std::move(*key_pem);
  }
  if (!files.ca_file.empty()) {
    auto ca_pem = ReadFile("--tls-ca", files.ca_file);
    if (!ca_pem.ok()) return ca_pem.status();
    auto certs = ParseCertificates("--tls-ca", files.ca_file, *ca_pem);
    if (!certs.ok()) return certs.status();
    tls.ca_pem = std::move(*ca_pem);
  }
  tls.enabled = has_cert || !files.ca_file.empty() || (role == TlsRole::kClient && files.client_tls);
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsConfig& tls, bool verify_clients) {
  if (!tls.enabled || !tls.has_identity()) return grpc::InsecureServerCredentials();
  const bool verify = verify_clients && !tls.files.ca_file.empty();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.files.key_file, tls.files.cert_file, verify ? tls.files.ca_file : std::string(),
      std::max(1u, tls.files.reload_interval_s));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (verify) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsConfig& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions options;
  const TlsFiles& f = tls.files;
  if (!f.cert_file.empty() || !f.ca_file.empty()) {
    options.set_certificate_provider(std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        f.key_file, f.cert_file, f.ca_file, std::max(1u, f.reload_interval_s)));
    if (!f.ca_file.empty()) options.watch_root_certs();  // else the system's roots
    if (!f.cert_file.empty()) options.watch_identity_key_cert_pairs();
  }
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace moe::rpc
