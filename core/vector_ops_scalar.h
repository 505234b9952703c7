// Scalar bodies of core/vector_ops.h over an index range [i, n). The portable
// versions (core/vector_ops.cc) run them over the whole input and the AVX-512
// versions (core/vector_ops_avx512.cc) over the tail after their vector loop,
// so both define each result the same way.
//
// Each includer includes this file inside an anonymous namespace of its own
// (after <cmath>, <cstdint>, <cstring> and <limits>): the two files are built
// for different instruction sets, and internal linkage keeps the linker from
// merging their copies.

inline float MaxValueFrom(const float* x, int64_t i, int64_t n, float m) {
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

inline void ExpShiftedFrom(const float* x, int64_t i, int64_t n, float shift, float scale, float* out) {
  for (; i < n; ++i) out[i] = std::exp((x[i] - shift) * scale);
}

inline void ExpShiftedWideFrom(const float* x, int64_t i, int64_t n, float shift, float scale, double* out) {
  for (; i < n; ++i) out[i] = static_cast<double>(std::exp((x[i] - shift) * scale));
}

// Appends to out[k...] the indices in [i, n) whose value exceeds threshold;
// returns the new count.
inline int64_t IndicesAboveFrom(const float* x, int64_t i, int64_t n, float threshold, int32_t* out, int64_t k) {
  for (; i < n; ++i) {
    if (x[i] > threshold) out[k++] = static_cast<int32_t>(i);
  }
  return k;
}

// IndicesAboveFrom that also appends the values and widens [*lo, *hi] over them.
inline int64_t SelectAboveFrom(const float* x, int64_t i, int64_t n, float threshold, int32_t* ids, float* values,
                               int64_t k, float* lo, float* hi) {
  float l = *lo, h = *hi;
  for (; i < n; ++i) {
    if (x[i] > threshold) {
      ids[k] = static_cast<int32_t>(i);
      values[k++] = x[i];
      l = x[i] < l ? x[i] : l;
      h = x[i] > h ? x[i] : h;
    }
  }
  *lo = l;
  *hi = h;
  return k;
}

inline void BucketIndicesFrom(const float* v, int64_t i, int64_t n, float hi, float scale, uint16_t last,
                              uint16_t* out) {
  const float top = static_cast<float>(last);
  for (; i < n; ++i) {
    // (hi - v) * scale is >= 0 for a finite v <= hi; NaN lands in the last bucket too.
    const float b = v[i] == -std::numeric_limits<float>::infinity() ? top : (hi - v[i]) * scale;
    out[i] = static_cast<uint16_t>(static_cast<int>(b < top ? b : top));
  }
}

inline int64_t IndicesEqualFrom(const uint16_t* x, int64_t i, int64_t n, uint16_t value, int32_t* out, int64_t k) {
  for (; i < n; ++i) {
    if (x[i] == value) out[k++] = static_cast<int32_t>(i);
  }
  return k;
}

// A float's bits as an integer that orders like the float (-0 as +0).
inline int32_t OrderedBits(float v) {
  v += 0.0f;
  int32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return bits >= 0 ? bits : bits ^ 0x7fffffff;
}

// Compacts entries [i, n) to out... keeping those at or above (cut, id) in
// logit order (cut = OrderedBits(logit)); returns the new count.
inline int64_t KeepThroughLogitOrderFrom(const float* values, int32_t* ids, double* weights, int64_t i, int64_t n,
                                         int32_t cut, int32_t id, int64_t out) {
  for (; i < n; ++i) {
    const int32_t o = OrderedBits(values[i]);
    const bool keep = o > cut || (o == cut && ids[i] <= id);
    // Branch-free: on flat logits the test is a coin toss for a predictor.
    ids[out] = ids[i];
    weights[out] = weights[i];
    out += static_cast<int64_t>(keep);
  }
  return out;
}
