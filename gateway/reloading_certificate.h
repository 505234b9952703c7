// ReloadingCertificate: the certificate chain and private key that the
// gateway's HTTPS listener presents, read from two PEM files and read again
// when they change, so that a renewed certificate (a cert-manager renewal, an
// updated Kubernetes Secret volume) is served without a restart, as the gRPC
// listeners do (proto/tls.h).
//
// Install() hooks an SSL_CTX: every handshake asks for the current pair, and
// at most once per `check_interval` the files' identity (inode, size, mtime)
// is compared with the last one read. Files that no longer parse, or whose
// key does not match the certificate, are logged and ignored: the last good
// pair stays in use.
//
// Thread-safety: the handshake callback may run on any thread.
#ifndef MOE_GATEWAY_RELOADING_CERTIFICATE_H_
#define MOE_GATEWAY_RELOADING_CERTIFICATE_H_

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"

namespace moe {

class ReloadingCertificate {
 public:
  // Reads both files now; INVALID_ARGUMENT naming the file when they do not
  // hold a certificate chain and its key.
  static absl::StatusOr<std::unique_ptr<ReloadingCertificate>> Load(const std::string& cert_file,
                                                                    const std::string& key_file,
                                                                    std::chrono::seconds check_interval);
  ~ReloadingCertificate();
  ReloadingCertificate(const ReloadingCertificate&) = delete;
  ReloadingCertificate& operator=(const ReloadingCertificate&) = delete;

  // Makes `ctx` present the current pair in every handshake. This object must
  // outlive `ctx`.
  void Install(SSL_CTX* ctx);

  // How many times the files were read successfully (1 after Load).
  int loads() const;

 private:
  struct Pair;
  ReloadingCertificate(std::string cert_file, std::string key_file, std::chrono::seconds check_interval);
  static int OnHandshake(SSL* ssl, void* self);
  // Reads the files into a new pair (not installed).
  absl::StatusOr<std::shared_ptr<const Pair>> Read() const;
  // The files' identity now ("" when a file cannot be stat'ed).
  std::string Identity() const;
  std::shared_ptr<const Pair> Current() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string cert_file_, key_file_;
  const std::chrono::seconds check_interval_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Pair> pair_ ABSL_GUARDED_BY(mu_);
  std::string identity_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ ABSL_GUARDED_BY(mu_);
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace moe

#endif  // MOE_GATEWAY_RELOADING_CERTIFICATE_H_
