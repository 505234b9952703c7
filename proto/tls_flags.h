// The TLS flags shared by every binary (see proto/tls.h for what they mean
// on servers and on clients).
#ifndef MOE_PROTO_TLS_FLAGS_H_
#define MOE_PROTO_TLS_FLAGS_H_

#include "absl/status/statusor.h"
#include "proto/tls.h"

namespace moe::rpc {

// --tls-cert, --tls-key, --tls-ca, --tls-server-name as given.
TlsFiles TlsFilesFromFlags();
// Loaded and checked (errors name the flag and the file). `client_tls`:
// a client's own --tls flag (TLS verified by the system's roots when no
// --tls-ca is given).
absl::StatusOr<TlsConfig> TlsFromFlags(TlsRole role, bool client_tls = false);

}  // namespace moe::rpc

#endif  // MOE_PROTO_TLS_FLAGS_H_
