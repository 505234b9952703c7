// The NCCL expert transport's wire plan (`moe-router --expert-transport
// nccl`), host code only: no CUDA, no NCCL, so every run tests it.
//
// gRPC keeps the control plane (set-up, health, GetInfo, errors); NCCL moves
// one MoE layer's rows and outputs between GPU buffers. Rank 0 is the router,
// rank w + 1 is worker w. Per layer, in three phases (each one NCCL group on
// each side):
//   0  header: the router sends every worker a fixed-size header (step, layer,
//      rows per local expert); every worker receives one;
//   1  rows:   to each worker with rows, rows x hidden f32, grouped by the
//      worker's local experts of that layer in ascending expert id;
//   2  outputs: each worker with rows sends rows x hidden f32 back.
// A worker without rows gets its header and nothing else, and sends nothing:
// skipped symmetrically, because both sides derive phases 1 and 2 from the
// same header.
//
// NCCL pairs a send with the next receive posted for that peer; counts or
// datatypes that differ hang or corrupt. RouterOps and WorkerOps build the two
// sides' operations from the same numbers and CheckPairing proves they pair
// (tests run it over random plans). A worker checks every header before it
// posts anything else (HeaderChecker): a header out of order is a desync, and
// the worker aborts instead of computing on the wrong data.
#ifndef MOE_EXPERTS_NCCL_PLAN_H_
#define MOE_EXPERTS_NCCL_PLAN_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace moe::nccl {

// Most local experts of one layer a worker may hold (the header's capacity).
inline constexpr int kMaxHeaderExperts = 256;
// magic, version, kind, generation, step, layer, count, rows[256], checksum.
inline constexpr int64_t kHeaderBytes = 4 + 2 + 2 + 8 + 8 + 4 + 4 + 4 * kMaxHeaderExperts + 4;
inline constexpr uint32_t kHeaderMagic = 0x4e45454d;  // "MEEN" little-endian
inline constexpr uint16_t kHeaderVersion = 1;

enum class HeaderKind : uint16_t {
  kExchange = 1,  // a layer's rows follow (when rows are > 0)
  kStop = 2,      // the router closes the communicator: the worker leaves its loop
};

struct ExchangeHeader {
  HeaderKind kind = HeaderKind::kExchange;
  uint64_t generation = 0;  // of the communicator (a rebuilt one counts up)
  uint64_t step = 0;        // the router's exchange counter
  uint32_t layer = 0;
  std::vector<uint32_t> rows;  // per local expert of `layer`, ascending expert id
  int64_t total_rows() const;
};

using HeaderBytes = std::array<uint8_t, kHeaderBytes>;

// INVALID_ARGUMENT when there are more than kMaxHeaderExperts entries.
absl::StatusOr<HeaderBytes> EncodeHeader(const ExchangeHeader& header);
// DATA_LOSS naming what is wrong: size, magic, version, kind, entry count, checksum.
absl::StatusOr<ExchangeHeader> DecodeHeader(absl::Span<const uint8_t> bytes);

// A worker's check of each header it receives, before it posts anything else.
class HeaderChecker {
 public:
  // `local_experts[layer]`: how many experts of that layer the worker holds
  // (layers it holds none of may be absent); `generation` of the communicator;
  // `max_rows`: the most rows one exchange may bring.
  HeaderChecker(std::map<uint32_t, uint32_t> local_experts, uint64_t generation, int64_t max_rows)
      : local_experts_(std::move(local_experts)), generation_(generation), max_rows_(max_rows) {}
  // OK when `h` may follow the headers before it; INTERNAL "desync: ..."
  // otherwise (another generation, (step, layer) not after the previous one,
  // a layer or an entry count the worker does not hold, too many rows).
  absl::Status Check(const ExchangeHeader& h);

 private:
  const std::map<uint32_t, uint32_t> local_experts_;
  const uint64_t generation_;
  const int64_t max_rows_;
  bool seen_ = false;
  uint64_t last_step_ = 0;
  uint32_t last_layer_ = 0;
};

enum class OpKind { kSend, kRecv };
enum class DataType { kUint8, kFloat32 };

// One point-to-point operation, in the order a rank posts it.
struct P2pOp {
  OpKind kind = OpKind::kSend;
  int peer = 0;
  int64_t count = 0;  // elements of `type`
  DataType type = DataType::kUint8;
  int phase = 0;  // 0 header, 1 rows, 2 outputs
  std::string ToString() const;
};

// The router's (rank 0) operations for one layer: `rows_of_worker[w]` rows
// for worker w (rank w + 1).
std::vector<P2pOp> RouterOps(absl::Span<const int64_t> rows_of_worker, int64_t hidden);
// A worker's operations (with the router, rank 0) for a header of `rows` rows.
std::vector<P2pOp> WorkerOps(int64_t rows, int64_t hidden);
// One process holding rank 0 alone (the router and its in-process experts,
// sending to itself): the router's operations and the worker's, phase by
// phase, as that process posts them.
std::vector<P2pOp> SelfOps(int64_t rows, int64_t hidden);

// OK when, for every ordered pair of ranks (a, b), the sends a posts to b
// and the receives b posts from a match one for one, in order, in count,
// datatype and phase. FAILED_PRECONDITION naming the first pair and position
// that does not.
absl::Status CheckPairing(const std::map<int, std::vector<P2pOp>>& ops_by_rank);

}  // namespace moe::nccl

#endif  // MOE_EXPERTS_NCCL_PLAN_H_
