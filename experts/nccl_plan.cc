#include "experts/nccl_plan.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace moe::nccl {
namespace {

// Little-endian writer and reader over the header's bytes.
class Writer {
 public:
  explicit Writer(HeaderBytes* out) : out_(out) {}
  void U16(uint16_t v) { Put(v, 2); }
  void U32(uint32_t v) { Put(v, 4); }
  void U64(uint64_t v) { Put(v, 8); }
  size_t at() const { return at_; }

 private:
  void Put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) (*out_)[at_++] = static_cast<uint8_t>(v >> (8 * i));
  }
  HeaderBytes* out_;
  size_t at_ = 0;
};

class Reader {
 public:
  explicit Reader(absl::Span<const uint8_t> in) : in_(in) {}
  uint16_t U16() { return static_cast<uint16_t>(Get(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Get(4)); }
  uint64_t U64() { return Get(8); }
  size_t at() const { return at_; }

 private:
  uint64_t Get(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(in_[at_++]) << (8 * i);
    return v;
  }
  absl::Span<const uint8_t> in_;
  size_t at_ = 0;
};

uint32_t Fnv1a32(absl::Span<const uint8_t> bytes) {
  uint32_t h = 2166136261u;
  for (uint8_t b : bytes) h = (h ^ b) * 16777619u;
  return h;
}

constexpr size_t kChecksumAt = kHeaderBytes - 4;

}  // namespace

int64_t ExchangeHeader::total_rows() const {
  int64_t n = 0;
  for (uint32_t r : rows) n += r;
  return n;
}

absl::StatusOr<HeaderBytes> EncodeHeader(const ExchangeHeader& h) {
  if (h.rows.size() > static_cast<size_t>(kMaxHeaderExperts)) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL header: ", h.rows.size(), " local experts in layer ", h.layer,
                                                   ", at most ", kMaxHeaderExperts));
  }
  HeaderBytes out{};
  Writer w(&out);
  w.U32(kHeaderMagic);
  w.U16(kHeaderVersion);
  w.U16(static_cast<uint16_t>(h.kind));
  w.U64(h.generation);
  w.U64(h.step);
  w.U32(h.layer);
  w.U32(static_cast<uint32_t>(h.rows.size()));
  for (int i = 0; i < kMaxHeaderExperts; ++i) w.U32(i < static_cast<int>(h.rows.size()) ? h.rows[i] : 0);
  const uint32_t sum = Fnv1a32(absl::MakeConstSpan(out.data(), kChecksumAt));
  for (int i = 0; i < 4; ++i) out[kChecksumAt + i] = static_cast<uint8_t>(sum >> (8 * i));
  return out;
}

absl::StatusOr<ExchangeHeader> DecodeHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() != static_cast<size_t>(kHeaderBytes)) {
    return absl::DataLossError(absl::StrCat("NCCL header: ", bytes.size(), " bytes, expected ", kHeaderBytes));
  }
  Reader r(bytes);
  const uint32_t magic = r.U32();
  if (magic != kHeaderMagic) return absl::DataLossError(absl::StrCat("NCCL header: bad magic 0x", absl::Hex(magic)));
  const uint16_t version = r.U16();
  if (version != kHeaderVersion) {
    return absl::DataLossError(absl::StrCat("NCCL header: version ", version, ", this build speaks ", kHeaderVersion));
  }
  uint32_t sum = 0;
  for (int i = 0; i < 4; ++i) sum |= static_cast<uint32_t>(bytes[kChecksumAt + i]) << (8 * i);
  if (sum != Fnv1a32(bytes.subspan(0, kChecksumAt))) return absl::DataLossError("NCCL header: checksum mismatch");
  ExchangeHeader h;
  const uint16_t kind = r.U16();
  if (kind != static_cast<uint16_t>(HeaderKind::kExchange) && kind != static_cast<uint16_t>(HeaderKind::kStop)) {
    return absl::DataLossError(absl::StrCat("NCCL header: unknown kind ", kind));
  }
  h.kind = static_cast<HeaderKind>(kind);
  h.generation = r.U64();
  h.step = r.U64();
  h.layer = r.U32();
  const uint32_t count = r.U32();
  if (count > static_cast<uint32_t>(kMaxHeaderExperts)) {
    return absl::DataLossError(absl::StrCat("NCCL header: ", count, " entries, at most ", kMaxHeaderExperts));
  }
  for (uint32_t i = 0; i < static_cast<uint32_t>(kMaxHeaderExperts); ++i) {
    const uint32_t v = r.U32();
    if (i < count) {
      h.rows.push_back(v);
    } else if (v != 0) {
      return absl::DataLossError(absl::StrCat("NCCL header: entry ", i, " past the count ", count, " is ", v));
    }
  }
  return h;
}

absl::Status HeaderChecker::Check(const ExchangeHeader& h) {
  if (h.generation != generation_) {
    return absl::InternalError(absl::StrCat("desync: header of communicator generation ", h.generation,
                                            ", this worker joined generation ", generation_));
  }
  if (h.kind == HeaderKind::kStop) return absl::OkStatus();
  if (seen_ && (h.step < last_step_ || (h.step == last_step_ && h.layer <= last_layer_))) {
    return absl::InternalError(absl::StrCat("desync: header for step ", h.step, " layer ", h.layer,
                                            " after step ", last_step_, " layer ", last_layer_));
  }
  auto it = local_experts_.find(h.layer);
  const uint32_t held = it == local_experts_.end() ? 0 : it->second;
  if (h.rows.size() != held) {
    return absl::InternalError(absl::StrCat("desync: header for layer ", h.layer, " has ", h.rows.size(),
                                            " local experts, this worker holds ", held));
  }
  if (h.total_rows() > max_rows_) {
    return absl::InternalError(absl::StrCat("desync: header for step ", h.step, " layer ", h.layer, " brings ",
                                            h.total_rows(), " rows, at most ", max_rows_));
  }
  seen_ = true;
  last_step_ = h.step;
  last_layer_ = h.layer;
  return absl::OkStatus();
}

std::string P2pOp::ToString() const {
  return absl::StrCat(kind == OpKind::kSend ? "send to " : "recv from ", peer, " ", count,
                      type == DataType::kUint8 ? " uint8" : " float32", " (phase ", phase, ")");
}

std::vector<P2pOp> RouterOps(absl::Span<const int64_t> rows_of_worker, int64_t hidden) {
  std::vector<P2pOp> ops;
  const int n = static_cast<int>(rows_of_worker.size());
  for (int w = 0; w < n; ++w) ops.push_back({OpKind::kSend, w + 1, kHeaderBytes, DataType::kUint8, 0});
  for (int w = 0; w < n; ++w) {
    if (rows_of_worker[w] > 0) {
      ops.push_back({OpKind::kSend, w + 1, rows_of_worker[w] * hidden, DataType::kFloat32, 1});
    }
  }
  for (int w = 0; w < n; ++w) {
    if (rows_of_worker[w] > 0) {
      ops.push_back({OpKind::kRecv, w + 1, rows_of_worker[w] * hidden, DataType::kFloat32, 2});
    }
  }
  return ops;
}

std::vector<P2pOp> WorkerOps(int64_t rows, int64_t hidden) {
  std::vector<P2pOp> ops = {{OpKind::kRecv, 0, kHeaderBytes, DataType::kUint8, 0}};
  if (rows > 0) {
    ops.push_back({OpKind::kRecv, 0, rows * hidden, DataType::kFloat32, 1});
    ops.push_back({OpKind::kSend, 0, rows * hidden, DataType::kFloat32, 2});
  }
  return ops;
}

std::vector<P2pOp> SelfOps(int64_t rows, int64_t hidden) {
  // Rank 0 is the router and its one worker: in each phase the router's
  // operation and the worker's, in one group.
  const std::vector<P2pOp> router = RouterOps({&rows, 1}, hidden);
  const std::vector<P2pOp> worker = WorkerOps(rows, hidden);
  std::vector<P2pOp> ops;
  for (int phase = 0; phase < 3; ++phase) {
    for (const std::vector<P2pOp>* side : {&router, &worker}) {
      for (P2pOp op : *side) {
        if (op.phase != phase) continue;
        op.peer = 0;
        ops.push_back(op);
      }
    }
  }
  return ops;
}

absl::Status CheckPairing(const std::map<int, std::vector<P2pOp>>& ops_by_rank) {
  // sends[(a, b)] and recvs[(a, b)]: a's sends to b, b's receives from a.
  std::map<std::pair<int, int>, std::vector<const P2pOp*>> sends, recvs;
  for (const auto& [rank, ops] : ops_by_rank) {
    for (const P2pOp& op : ops) {
      if (op.kind == OpKind::kSend) {
        sends[{rank, op.peer}].push_back(&op);
      } else {
        recvs[{op.peer, rank}].push_back(&op);
      }
    }
  }
  auto keys = sends;
  for (const auto& [pair, unused] : recvs) keys[pair];
  for (const auto& [pair, unused] : keys) {
    const std::vector<const P2pOp*>& s = sends[pair];
    const std::vector<const P2pOp*>& r = recvs[pair];
    const size_t n = std::max(s.size(), r.size());
    for (size_t i = 0; i < n; ++i) {
      const std::string where = absl::StrCat("rank ", pair.first, " -> rank ", pair.second, ", message ", i, ": ");
      if (i >= s.size()) {
        return absl::FailedPreconditionError(absl::StrCat(where, "rank ", pair.second, " posts ", r[i]->ToString(),
                                                          " that no send matches"));
      }
      if (i >= r.size()) {
        return absl::FailedPreconditionError(absl::StrCat(where, "rank ", pair.first, " posts ", s[i]->ToString(),
                                                          " that no receive matches"));
      }
      if (s[i]->count != r[i]->count || s[i]->type != r[i]->type || s[i]->phase != r[i]->phase) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, s[i]->ToString(), " does not match ", r[i]->ToString()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace moe::nccl
