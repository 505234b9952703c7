// Instruction-set-generic kernel bodies. Included by kernels_avx512.cc,
// kernels_avx2.cc and kernels_portable.cc, each of which defines a 16-lane
// vector type `V` (see kernels.h for the reduction-order contract) and then
// includes this file inside its own namespace.
//
// V must provide: Zero(), LoadF32(const float*), LoadBf16(const uint16_t*),
// LoadF16(const uint16_t*), Fma(a, b, c) = a * b + c fused, Reduce(v) in the
// canonical tree order, and Reduce4(const V* v, float* out): out[j] =
// Reduce(v[j]) for j < 4, bit for bit. kMr x kNr is the register tile.

template <typename WT>
inline V LoadW(const WT* p);
template <>
inline V LoadW<float>(const float* p) { return LoadF32(p); }

struct Bf16Tag { uint16_t v; };
struct F16Tag { uint16_t v; };
template <>
inline V LoadW<Bf16Tag>(const Bf16Tag* p) { return LoadBf16(reinterpret_cast<const uint16_t*>(p)); }
template <>
inline V LoadW<F16Tag>(const F16Tag* p) { return LoadF16(reinterpret_cast<const uint16_t*>(p)); }

// One register tile: MR rows of x against NR rows of w (K long, ldw apart).
template <typename WT, int MR, int NR>
void Tile(const float* x, int64_t ldx, const WT* w, int64_t ldw, int64_t K, float* y, int64_t ldy) {
  V acc[MR][NR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) acc[i][j] = Zero();
  const int64_t k16 = K & ~int64_t{15};
  // The next tile's weight rows (the NR rows after these, contiguous in
  // memory) are prefetched linearly, this step's share of them per step, so
  // that one sequential stream runs a tile ahead of the loads. Without it a
  // batch-1 product, whose tile reads NR rows side by side, reached about 60 %
  // of the host's read bandwidth (the hardware prefetchers restart on every
  // short row); with it about 72 % (docs/performance.md). Past the last row
  // the addresses are only prefetched, never loaded (a prefetch does not
  // fault).
  constexpr int64_t kStepBytes = NR * 16 * static_cast<int64_t>(sizeof(WT));
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(w) + static_cast<uintptr_t>(NR * ldw) * sizeof(WT);
  for (int64_t k = 0; k < k16; k += 16) {
#pragma GCC unroll 4
    for (int64_t b = 0; b < kStepBytes; b += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(ahead + static_cast<uintptr_t>((k / 16) * kStepBytes + b)), 0, 3);
    }
    V wv[NR];
#pragma GCC unroll 4
    for (int j = 0; j < NR; ++j) wv[j] = LoadW<WT>(w + j * ldw + k);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const V xv = LoadF32(x + i * ldx + k);
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = Fma(xv, wv[j], acc[i][j]);
    }
  }
  if (k16 < K) {
    const int64_t rem = K - k16;
    alignas(64) WT wt[NR][16] = {};
    alignas(64) float xt[MR][16] = {};
    for (int j = 0; j < NR; ++j)
      for (int64_t l = 0; l < rem; ++l) wt[j][l] = w[j * ldw + k16 + l];
    for (int i = 0; i < MR; ++i)
      for (int64_t l = 0; l < rem; ++l) xt[i][l] = x[i * ldx + k16 + l];
    V wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = LoadW<WT>(wt[j]);
    for (int i = 0; i < MR; ++i) {
      const V xv = LoadF32(xt[i]);
      for (int j = 0; j < NR; ++j) acc[i][j] = Fma(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    if constexpr (NR == 4) {
      Reduce4(acc[i], y + i * ldy);
    } else {
      for (int j = 0; j < NR; ++j) y[i * ldy + j] = Reduce(acc[i][j]);
    }
  }
}

template <typename WT, int MR>
void TileRowsN(int nr, const float* x, int64_t ldx, const WT* w, int64_t ldw, int64_t K, float* y, int64_t ldy) {
  switch (nr) {
    case 1: Tile<WT, MR, 1>(x, ldx, w, ldw, K, y, ldy); break;
    case 2: if constexpr (kNr >= 2) Tile<WT, MR, 2>(x, ldx, w, ldw, K, y, ldy); break;
    case 3: if constexpr (kNr >= 3) Tile<WT, MR, 3>(x, ldx, w, ldw, K, y, ldy); break;
    case 4: if constexpr (kNr >= 4) Tile<WT, MR, 4>(x, ldx, w, ldw, K, y, ldy); break;
  }
}

// An mr x nr tile (mr <= kMr, nr <= kNr): rows of w ldw apart, K long.
template <typename WT>
void TileDispatch(int mr, int nr, const float* x, int64_t ldx, const WT* w, int64_t ldw, int64_t K, float* y,
                  int64_t ldy) {
  switch (mr) {
    case 1: TileRowsN<WT, 1>(nr, x, ldx, w, ldw, K, y, ldy); break;
    case 2: if constexpr (kMr >= 2) TileRowsN<WT, 2>(nr, x, ldx, w, ldw, K, y, ldy); break;
    case 3: if constexpr (kMr >= 3) TileRowsN<WT, 3>(nr, x, ldx, w, ldw, K, y, ldy); break;
    case 4: if constexpr (kMr >= 4) TileRowsN<WT, 4>(nr, x, ldx, w, ldw, K, y, ldy); break;
    case 5: if constexpr (kMr >= 5) TileRowsN<WT, 5>(nr, x, ldx, w, ldw, K, y, ldy); break;
    case 6: if constexpr (kMr >= 6) TileRowsN<WT, 6>(nr, x, ldx, w, ldw, K, y, ldy); break;
  }
}

// Output columns [n0, n1) for all m rows. Rows are taken in blocks that stay
// in cache while the weight rows stream past.
template <typename WT>
void MatMulColumns(const float* x, int64_t m, int64_t ldx, const WT* w, int64_t K, float* y,
                   int64_t ldy, int64_t n0, int64_t n1) {
  const int64_t row_block = std::max<int64_t>(kMr, (int64_t{512} * 1024 / (K * 4)) / kMr * kMr);
  for (int64_t i0 = 0; i0 < m; i0 += row_block) {
    const int64_t i1 = std::min(m, i0 + row_block);
    for (int64_t j = n0; j < n1; j += kNr) {
      const int nr = static_cast<int>(std::min<int64_t>(kNr, n1 - j));
      for (int64_t i = i0; i < i1; i += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, i1 - i));
        TileDispatch<WT>(mr, nr, x + i * ldx, ldx, w + j * K, K, K, y + i * ldy + j, ldy);
      }
    }
  }
}

inline void MatMulColumnsAnyType(const float* x, int64_t m, int64_t ldx, const void* w, DType dt,
                                 int64_t K, float* y, int64_t ldy, int64_t n0, int64_t n1) {
  switch (dt) {
    case DType::kF32:
      MatMulColumns<float>(x, m, ldx, static_cast<const float*>(w), K, y, ldy, n0, n1);
      break;
    case DType::kBF16:
      MatMulColumns<Bf16Tag>(x, m, ldx, static_cast<const Bf16Tag*>(w), K, y, ldy, n0, n1);
      break;
    case DType::kF16:
      MatMulColumns<F16Tag>(x, m, ldx, static_cast<const F16Tag*>(w), K, y, ldy, n0, n1);
      break;
  }
}

// acc[d] += p[j] * rows[j * stride + d], j in order; each term a multiply
// then an add (not fused), like every implementation of AddScaledRows.
// Four 4-lane accumulators (registers on every 128-bit SIMD target) per 16
// columns; the columns' sums are independent, so any split over columns or
// lanes gives the same bits.
inline void AddScaledRowsOne(const float* p, int64_t m, const float* rows, int64_t stride, int64_t n,
                             float* acc) {
  typedef float Lanes4 __attribute__((vector_size(4 * sizeof(float))));
  int64_t d0 = 0;
  for (; d0 + 16 <= n; d0 += 16) {
    Lanes4 a[4];
    std::memcpy(a, acc + d0, sizeof(a));
    for (int64_t j = 0; j < m; ++j) {
      const float* v = rows + j * stride + d0;
      Lanes4 w[4];
      std::memcpy(w, v, sizeof(w));
      for (int c = 0; c < 4; ++c) a[c] += p[j] * w[c];
    }
    std::memcpy(acc + d0, a, sizeof(a));
  }
  for (int64_t d = d0; d < n; ++d) {
    float a = acc[d];
    for (int64_t j = 0; j < m; ++j) a += p[j] * rows[j * stride + d];
    acc[d] = a;
  }
}

// Every query against the same rows: one call per query (the columns of
// different queries never mix, so the same bits as any grouping).
inline void AddScaledRowsGeneric(const float* p, int64_t ldp, int64_t np, int64_t m, const float* rows,
                                 int64_t stride, int64_t n, float* acc, int64_t ldacc) {
  for (int64_t i = 0; i < np; ++i) AddScaledRowsOne(p + i * ldp, m, rows, stride, n, acc + i * ldacc);
}

// out[i * ldo + j] = Dot(q + i * ldq, rows + j * stride, n): the same tile
// as Dot, kMr queries by kNr rows at a time, the rows' tile in cache while
// the queries pass (each accumulator adds its pair's products in the
// canonical order, so every score is Dot's bits).
inline void DotRowsF32(const float* q, int64_t ldq, int64_t nq, const float* rows, int64_t stride, int64_t m,
                       int64_t n, float* out, int64_t ldo) {
  for (int64_t j = 0; j < m; j += kNr) {
    const int nr = static_cast<int>(std::min<int64_t>(kNr, m - j));
    for (int64_t i = 0; i < nq; i += kMr) {
      const int mr = static_cast<int>(std::min<int64_t>(kMr, nq - i));
      TileDispatch<float>(mr, nr, q + i * ldq, ldq, rows + j * stride, stride, n, out + i * ldo + j, ldo);
    }
  }
}

inline float DotF32(const float* a, const float* b, int64_t n) {
  float out;
  Tile<float, 1, 1>(a, n, b, n, n, &out, 1);
  return out;
}
