#include "gateway/reloading_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moe {

struct ReloadingCertificate::Pair {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;  // the certificates after the leaf
  EVP_PKEY* key = nullptr;
  ~Pair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

absl::StatusOr<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be read"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ReloadingCertificate::ReloadingCertificate(std::string cert_file, std::string key_file,
                                           std::chrono::seconds check_interval)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), check_interval_(check_interval) {}

ReloadingCertificate::~ReloadingCertificate() = default;

absl::StatusOr<std::unique_ptr<ReloadingCertificate>> ReloadingCertificate::Load(
    const std::string& cert_file, const std::string& key_file, std::chrono::seconds check_interval) {
  auto c = std::unique_ptr<ReloadingCertificate>(
      new ReloadingCertificate(cert_file, key_file, std::max(check_interval, std::chrono::seconds(1))));
  const std::string identity = c->Identity();
  auto pair = c->Read();
  if (!pair.ok()) return pair.status();
  absl::MutexLock lock(&c->mu_);
  c->pair_ = *std::move(pair);
  c->identity_ = identity;
  c->next_check_ = std::chrono::steady_clock::now() + c->check_interval_;
  c->loads_ = 1;
  return c;
}

std::string ReloadingCertificate::Identity() const {
  std::string id;
  for (const std::string* path : {&cert_file_, &key_file_}) {
    struct stat st;
    if (stat(path->c_str(), &st) != 0) return "";
    absl::StrAppend(&id, st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                    st.st_mtim.tv_nsec, ";");
  }
  return id;
}

absl::StatusOr<std::shared_ptr<const ReloadingCertificate::Pair>> ReloadingCertificate::Read() const {
  auto cert_pem = Slurp(cert_file_);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = Slurp(key_file_);
  if (!key_pem.ok()) return key_pem.status();
  auto pair = std::make_shared<Pair>();
  ERR_clear_error();
  {
    BIO* bio = BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size()));
    pair->leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    pair->chain = sk_X509_new_null();
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) sk_X509_push(pair->chain, x);
    BIO_free(bio);
  }
  {
    BIO* bio = BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size()));
    pair->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  ERR_clear_error();
  if (pair->leaf == nullptr) return absl::InvalidArgumentError(absl::StrCat(cert_file_, ": holds no PEM certificate"));
  if (pair->key == nullptr) return absl::InvalidArgumentError(absl::StrCat(key_file_, ": holds no PEM private key"));
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_file_, ": is not the private key of the certificate in ", cert_file_));
  }
  return std::shared_ptr<const Pair>(std::move(pair));
}

std::shared_ptr<const ReloadingCertificate::Pair> ReloadingCertificate::Current() {
  absl::MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return pair_;
  next_check_ = now + check_interval_;
  const std::string identity = Identity();
  if (identity.empty() || identity == identity_) return pair_;
  auto pair = Read();
  if (!pair.ok()) {
    // Possibly caught between the two files' updates: tried again next time.
    LOG(WARNING) << "https: keeping the current certificate: " << pair.status().message();
    return pair_;
  }
  pair_ = *std::move(pair);
  identity_ = identity;
  ++loads_;
  LOG(INFO) << "https: certificate reloaded from " << cert_file_;
  return pair_;
}

int ReloadingCertificate::loads() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

int ReloadingCertificate::OnHandshake(SSL* ssl, void* self) {
  const std::shared_ptr<const Pair> pair = static_cast<ReloadingCertificate*>(self)->Current();
  // SSL_use_cert_and_key takes its own references.
  return SSL_use_cert_and_key(ssl, pair->leaf, pair->key, pair->chain, /*override=*/1) == 1 ? 1 : 0;
}

void ReloadingCertificate::Install(SSL_CTX* ctx) { SSL_CTX_set_cert_cb(ctx, &ReloadingCertificate::OnHandshake, this); }

}  // namespace moe
