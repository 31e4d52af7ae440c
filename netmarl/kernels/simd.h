// Shared by the native kernels (gru_scan.cc, qmix_mixer.cc): 16-float vectors (GCC vector
// extensions: AVX-512 where the machine has it), a register-blocked matmul, and a vectorised
// exp of our own (so that neither -ffast-math nor glibc's vector maths library is needed).
#pragma once

#include <cstdint>
#include <cstring>

namespace netmarl {

typedef float v16 __attribute__((vector_size(64), aligned(4)));  // 16 floats, unaligned ok
constexpr int kLanes = 16;

// C[r, c] = sum_k A[r, k] Bm[k, c] for R rows and the NV * 16 columns starting at c0.
template <int R, int NV>
inline void block(const float* a, int lda, int k_dim, const float* bm, int ldb, float* c,
                  int ldc, int c0) {
  v16 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = v16{};
  for (int k = 0; k < k_dim; ++k) {
    v16 w[NV];
    for (int v = 0; v < NV; ++v)
      std::memcpy(&w[v], bm + static_cast<int64_t>(k) * ldb + c0 + v * kLanes, sizeof(v16));
    for (int r = 0; r < R; ++r) {
      const float x = a[static_cast<int64_t>(r) * lda + k];
      for (int v = 0; v < NV; ++v) acc[r][v] += x * w[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      std::memcpy(c + static_cast<int64_t>(r) * ldc + c0 + v * kLanes, &acc[r][v], sizeof(v16));
}

// C [rows, cols] = A [rows, k_dim] x Bm [k_dim, cols]; cols a multiple of 16. Blocks of R
// rows x NV vectors keep R * NV accumulators in registers (of 32) and load each row of Bm
// once per R rows.
template <int R, int NV>
inline void rows_times(const float* a, int rows, int k_dim, const float* bm, int cols,
                       float* c, int& r) {
  for (; r + R <= rows; r += R)
    for (int c0 = 0; c0 < cols; c0 += NV * kLanes)
      block<R, NV>(a + static_cast<int64_t>(r) * k_dim, k_dim, k_dim, bm, cols,
                   c + static_cast<int64_t>(r) * cols, cols, c0);
}

// Block shapes measured on this machine kind (Zen 5, one core): ~105-115 GFLOP/s for the
// forward [B, H] x [H, 3H] (8 x 3 vectors) and the backward [B, 3H] x [3H, H] (8 x 2).
inline void matmul(const float* a, int rows, int k_dim, const float* bm, int cols, float* c) {
  int r = 0;
  if (cols % (3 * kLanes) == 0) {
    rows_times<8, 3>(a, rows, k_dim, bm, cols, c, r);
    rows_times<4, 3>(a, rows, k_dim, bm, cols, c, r);
    rows_times<1, 3>(a, rows, k_dim, bm, cols, c, r);
  } else if (cols % (2 * kLanes) == 0) {
    rows_times<8, 2>(a, rows, k_dim, bm, cols, c, r);
    rows_times<4, 2>(a, rows, k_dim, bm, cols, c, r);
    rows_times<1, 2>(a, rows, k_dim, bm, cols, c, r);
  } else {
    rows_times<8, 1>(a, rows, k_dim, bm, cols, c, r);
    rows_times<1, 1>(a, rows, k_dim, bm, cols, c, r);
  }
}

inline v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v16));
  return v;
}

inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof(v16)); }

typedef int32_t vi16 __attribute__((vector_size(64)));

// e^x, 16 lanes at a time (Cephes expf: x = n ln 2 + r, |r| <= ln(2) / 2, a degree-6
// polynomial for e^r, 2^n built in the exponent bits); relative error ~2e-7.
inline v16 vexp(v16 x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  // round(x / ln 2) by adding 1.5 * 2^23: n lands in the low mantissa bits of t
  const v16 t = x * 1.44269504f + 12582912.0f;
  const v16 n = t - 12582912.0f;
  const v16 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  v16 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  vi16 bits;
  std::memcpy(&bits, &t, sizeof(v16));
  bits = (bits - 0x4B400000 + 127) << 23;  // 2^n
  v16 scale;
  std::memcpy(&scale, &bits, sizeof(v16));
  return p * scale;
}

inline v16 vsigmoid(v16 x) { return 1.0f / (1.0f + vexp(-x)); }
inline v16 vtanh(v16 x) { return 2.0f * vsigmoid(2.0f * x) - 1.0f; }

inline float hsum(v16 v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

}  // namespace netmarl
