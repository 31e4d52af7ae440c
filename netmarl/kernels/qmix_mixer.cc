// QMIX's monotonic mixer (netmarl.algos.value_decomposition.QMixer), forward and backward, as
// XLA FFI CPU kernels (see netmarl/kernels/__init__.py for how they are built and used).
//
// Per row (a time step of an episode), with state s [S] and agent values q [N]:
//   z = s W_s + c_s, split into  z_a [H] | z_d [H] | z_c [E] | z_f [E]   (Z = 2H + 2E)
//   W_1 = |relu(z_a) W_b + c_b|  as [N, E];   b_1 = z_c
//   w_2 = |relu(z_d) W_e + c_e|  [E];         V = relu(z_f) . w_g + c_g
//   pre = q W_1 + b_1,  m = elu(pre),  Q_tot = m . w_2 + V
// i.e. the four state-input layers side by side in one product. Why a kernel: XLA:CPU runs
// the mixer's forward and its autodiff backward as ~40 separate operations on [T B, <=64]
// arrays plus thin [T B, S] x [S, k] products, ~2.5 ms per QMIX update for ~110 MFLOP. Here
// the rows go through every layer eight at a time while they are in L1, the products
// register-blocked, and the backward pass recomputes the forward of its block (cheaper than
// saving it) and accumulates the weight gradients in registers over the block's rows.
//
// Layouts, all float32 row-major: q [R, N], s [R, S], W_s [S, Z], c_s [Z], W_b [H, N E],
// c_b [N E], W_e [H, E], c_e [E], w_g [E], c_g [1]; Q_tot [R]. The backward pass takes
// dL/dQ_tot [R] and returns dL/dq [R, N], dL/ds [R, S] and the gradients of the ten
// parameters in their own layouts. H and E must be multiples of 16 and N at most 16 (the Python side checks).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace netmarl;

constexpr int kRows = 8;  // rows per block: 8 x 2 vectors of accumulators in registers
constexpr int kMaxAgents = 16;

// out [kRows, cols] = a [kRows, k_dim] (row stride lda) x w [k_dim, cols] (+ bias).
void dense(const float* a, int lda, int k_dim, const float* w, int cols, const float* bias,
           float* out, int ldo) {
  int c0 = 0;
  for (; c0 + 2 * kLanes <= cols; c0 += 2 * kLanes)
    block<kRows, 2>(a, lda, k_dim, w, cols, out, ldo, c0);
  for (; c0 < cols; c0 += kLanes) block<kRows, 1>(a, lda, k_dim, w, cols, out, ldo, c0);
  if (!bias) return;
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < cols; c += kLanes)
      store(out + r * ldo + c, load(out + r * ldo + c) + load(bias + c));
}

// dw [k_dim, cols] += a^T g over the block's rows, a [kRows, k_dim] (stride lda), g
// [kRows, cols] (stride ldg): g's columns stay in registers while k runs.
template <int NV>
inline void outer_block(const float* a, int lda, int k_dim, const float* g, int ldg, int cols,
                        float* dw, int c0) {
  v16 gv[kRows][NV];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < NV; ++v) gv[r][v] = load(g + r * ldg + c0 + v * kLanes);
  for (int k = 0; k < k_dim; ++k) {
    v16 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = load(dw + static_cast<int64_t>(k) * cols + c0 + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const float x = a[r * lda + k];
      for (int v = 0; v < NV; ++v) acc[v] += x * gv[r][v];
    }
    for (int v = 0; v < NV; ++v) store(dw + static_cast<int64_t>(k) * cols + c0 + v * kLanes, acc[v]);
  }
}

void accumulate_outer(const float* a, int lda, int k_dim, const float* g, int ldg, int cols,
                      float* dw) {
  int c0 = 0;
  for (; c0 + 2 * kLanes <= cols; c0 += 2 * kLanes) outer_block<2>(a, lda, k_dim, g, ldg, cols, dw, c0);
  for (; c0 < cols; c0 += kLanes) outer_block<1>(a, lda, k_dim, g, ldg, cols, dw, c0);
}

// db [cols] += the block's rows of g summed.
void accumulate_rows(const float* g, int ldg, int cols, float* db) {
  for (int c = 0; c < cols; c += kLanes) {
    v16 acc = load(db + c);
    for (int r = 0; r < kRows; ++r) acc += load(g + r * ldg + c);
    store(db + c, acc);
  }
}

inline v16 vabs(v16 x) { return x < 0.0f ? -x : x; }
inline v16 vsign(v16 x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }  // jnp.sign
inline v16 vrelu(v16 x) { return x > 0.0f ? x : 0.0f; }

struct Mixer {
  int n, s, e, h, z, ne;
  const float *w_s, *c_s, *w_b, *c_b, *w_e, *c_e, *w_g, *c_g;
};

// The forward pass of one block of kRows rows: z, act = (relu(z_a), relu(z_d), z_c,
// relu(z_f)), o1 = relu(z_a) W_b + c_b, o2 = relu(z_d) W_e + c_e, pre and Q_tot.
struct Block {
  std::vector<float> z, act, o1, o2, pre, m;
  float q_tot[kRows];
  explicit Block(const Mixer& k)
      : z(kRows * k.z), act(kRows * k.z), o1(kRows * k.ne), o2(kRows * k.e), pre(kRows * k.e),
        m(kRows * k.e) {}

  void forward(const Mixer& k, const float* q, const float* s) {
    dense(s, k.s, k.s, k.w_s, k.z, k.c_s, z.data(), k.z);
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < k.z; c += kLanes) {
        const v16 x = load(&z[r * k.z + c]);
        const bool linear = c >= 2 * k.h && c < 2 * k.h + k.e;  // z_c = b_1, no relu
        store(&act[r * k.z + c], linear ? x : vrelu(x));
      }
    dense(act.data(), k.z, k.h, k.w_b, k.ne, k.c_b, o1.data(), k.ne);
    dense(act.data() + k.h, k.z, k.h, k.w_e, k.e, k.c_e, o2.data(), k.e);
    for (int r = 0; r < kRows; ++r) {
      const float* a = &act[r * k.z];
      v16 total{};
      for (int c = 0; c < k.e; c += kLanes) {
        v16 x = load(a + 2 * k.h + c);  // b_1
        for (int i = 0; i < k.n; ++i) x += q[r * k.n + i] * vabs(load(&o1[r * k.ne + i * k.e + c]));
        const v16 mixed = x > 0.0f ? x : vexp(x) - 1.0f;  // elu
        store(&pre[r * k.e + c], x);
        store(&m[r * k.e + c], mixed);
        total += mixed * vabs(load(&o2[r * k.e + c])) + load(a + 2 * k.h + k.e + c) * load(k.w_g + c);
      }
      q_tot[r] = hsum(total) + k.c_g[0];
    }
  }
};

// Copies rows [r0, r0 + kRows) of x [R, width] into buf, zero past the end (a short block).
const float* rows_of(const float* x, int rows, int width, int r0, std::vector<float>& buf) {
  if (r0 + kRows <= rows) return x + static_cast<int64_t>(r0) * width;
  std::fill(buf.begin(), buf.end(), 0.0f);
  std::copy(x + static_cast<int64_t>(r0) * width, x + static_cast<int64_t>(rows) * width, buf.begin());
  return buf.data();
}

ffi::Error read_mixer(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> s, ffi::Buffer<ffi::F32> w_s,
                      ffi::Buffer<ffi::F32> c_s, ffi::Buffer<ffi::F32> w_b, ffi::Buffer<ffi::F32> c_b,
                      ffi::Buffer<ffi::F32> w_e, ffi::Buffer<ffi::F32> c_e, ffi::Buffer<ffi::F32> w_g,
                      ffi::Buffer<ffi::F32> c_g, Mixer& k, int& rows) {
  if (q.dimensions().size() != 2 || s.dimensions().size() != 2 || w_b.dimensions().size() != 2)
    return ffi::Error::InvalidArgument("q [R, N], s [R, S] and W_b [H, N E] expected");
  rows = static_cast<int>(q.dimensions()[0]);
  k.n = static_cast<int>(q.dimensions()[1]);
  k.s = static_cast<int>(s.dimensions()[1]);
  k.z = static_cast<int>(c_s.element_count());
  k.e = static_cast<int>(c_e.element_count());
  k.h = static_cast<int>(w_b.dimensions()[0]);
  k.ne = static_cast<int>(c_b.element_count());
  if (k.z != 2 * k.h + 2 * k.e || k.ne != k.n * k.e || k.h % kLanes || k.e % kLanes ||
      k.n > kMaxAgents)
    return ffi::Error::InvalidArgument("mixer shapes: Z = 2H + 2E, N E, 16 | H, E, N <= 16");
  k.w_s = w_s.typed_data(), k.c_s = c_s.typed_data(), k.w_b = w_b.typed_data();
  k.c_b = c_b.typed_data(), k.w_e = w_e.typed_data(), k.c_e = c_e.typed_data();
  k.w_g = w_g.typed_data(), k.c_g = c_g.typed_data();
  return ffi::Error::Success();
}

ffi::Error forward(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> s, ffi::Buffer<ffi::F32> w_s,
                   ffi::Buffer<ffi::F32> c_s, ffi::Buffer<ffi::F32> w_b, ffi::Buffer<ffi::F32> c_b,
                   ffi::Buffer<ffi::F32> w_e, ffi::Buffer<ffi::F32> c_e, ffi::Buffer<ffi::F32> w_g,
                   ffi::Buffer<ffi::F32> c_g, ffi::ResultBuffer<ffi::F32> q_tot) {
  Mixer k;
  int rows;
  if (auto err = read_mixer(q, s, w_s, c_s, w_b, c_b, w_e, c_e, w_g, c_g, k, rows); !err.success())
    return err;
  Block blk(k);
  std::vector<float> q_pad(kRows * k.n), s_pad(kRows * k.s);
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    blk.forward(k, rows_of(q.typed_data(), rows, k.n, r0, q_pad),
                rows_of(s.typed_data(), rows, k.s, r0, s_pad));
    for (int r = 0; r < kRows && r0 + r < rows; ++r) q_tot->typed_data()[r0 + r] = blk.q_tot[r];
  }
  return ffi::Error::Success();
}

ffi::Error backward(ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> s, ffi::Buffer<ffi::F32> w_s,
                    ffi::Buffer<ffi::F32> c_s, ffi::Buffer<ffi::F32> w_b, ffi::Buffer<ffi::F32> c_b,
                    ffi::Buffer<ffi::F32> w_e, ffi::Buffer<ffi::F32> c_e, ffi::Buffer<ffi::F32> w_g,
                    ffi::Buffer<ffi::F32> c_g, ffi::Buffer<ffi::F32> d_tot,
                    ffi::ResultBuffer<ffi::F32> d_q, ffi::ResultBuffer<ffi::F32> d_s,
                    ffi::ResultBuffer<ffi::F32> d_w_s, ffi::ResultBuffer<ffi::F32> d_c_s,
                    ffi::ResultBuffer<ffi::F32> d_w_b, ffi::ResultBuffer<ffi::F32> d_c_b,
                    ffi::ResultBuffer<ffi::F32> d_w_e, ffi::ResultBuffer<ffi::F32> d_c_e,
                    ffi::ResultBuffer<ffi::F32> d_w_g, ffi::ResultBuffer<ffi::F32> d_c_g) {
  Mixer k;
  int rows;
  if (auto err = read_mixer(q, s, w_s, c_s, w_b, c_b, w_e, c_e, w_g, c_g, k, rows); !err.success())
    return err;
  for (auto* out : {&d_w_s, &d_c_s, &d_w_b, &d_c_b, &d_w_e, &d_c_e, &d_w_g, &d_c_g})
    std::fill_n((**out).typed_data(), (**out).element_count(), 0.0f);
  // W_b^T [N E, H] and W_e^T [E, H]: the backward products through the second layers
  std::vector<float> w_b_t(static_cast<size_t>(k.ne) * k.h), w_e_t(static_cast<size_t>(k.e) * k.h);
  for (int i = 0; i < k.h; ++i) {
    for (int c = 0; c < k.ne; ++c) w_b_t[c * k.h + i] = k.w_b[i * k.ne + c];
    for (int c = 0; c < k.e; ++c) w_e_t[c * k.h + i] = k.w_e[i * k.e + c];
  }
  Block blk(k);
  std::vector<float> q_pad(kRows * k.n), s_pad(kRows * k.s), g_pad(kRows);
  std::vector<float> dz(kRows * k.z), do1(kRows * k.ne), do2(kRows * k.e), dh(kRows * k.h);
  float* dw_g = d_w_g->typed_data();
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    const float* qb = rows_of(q.typed_data(), rows, k.n, r0, q_pad);
    const float* sb = rows_of(s.typed_data(), rows, k.s, r0, s_pad);
    const float* gb = rows_of(d_tot.typed_data(), rows, 1, r0, g_pad);  // zero past the end
    blk.forward(k, qb, sb);
    for (int r = 0; r < kRows; ++r) {
      const float g = gb[r];
      const float* a = &blk.act[r * k.z];
      float* dzr = &dz[r * k.z];
      float dq[kMaxAgents] = {};
      d_c_g->typed_data()[0] += g;
      for (int c = 0; c < k.e; c += kLanes) {
        const v16 o2 = load(&blk.o2[r * k.e + c]), x = load(&blk.pre[r * k.e + c]);
        const v16 mixed = load(&blk.m[r * k.e + c]);
        store(&do2[r * k.e + c], g * mixed * vsign(o2));  // dQ/dw_2 = m, through |.|
        const v16 elu_grad = x > 0.0f ? 1.0f : mixed + 1.0f;
        const v16 d_pre = g * vabs(o2) * elu_grad;
        store(dzr + 2 * k.h + c, d_pre);  // b_1 = z_c
        for (int i = 0; i < k.n; ++i) {
          const v16 o1 = load(&blk.o1[r * k.ne + i * k.e + c]);
          dq[i] += hsum(d_pre * vabs(o1));
          store(&do1[r * k.ne + i * k.e + c], qb[r * k.n + i] * d_pre * vsign(o1));
        }
        const v16 z_f = load(&blk.z[r * k.z + 2 * k.h + k.e + c]);
        store(dzr + 2 * k.h + k.e + c, z_f > 0.0f ? g * load(k.w_g + c) : 0.0f);
        store(dw_g + c, load(dw_g + c) + g * load(a + 2 * k.h + k.e + c));
      }
      if (r0 + r < rows)
        for (int i = 0; i < k.n; ++i) d_q->typed_data()[(r0 + r) * k.n + i] = dq[i];
    }
    // through the second layers to relu(z_a) and relu(z_d), then through the relus
    dense(do1.data(), k.ne, k.ne, w_b_t.data(), k.h, nullptr, dh.data(), k.h);
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < k.h; c += kLanes)
        store(&dz[r * k.z + c], load(&blk.z[r * k.z + c]) > 0.0f ? load(&dh[r * k.h + c]) : 0.0f);
    dense(do2.data(), k.e, k.e, w_e_t.data(), k.h, nullptr, dh.data(), k.h);
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < k.h; c += kLanes)
        store(&dz[r * k.z + k.h + c],
              load(&blk.z[r * k.z + k.h + c]) > 0.0f ? load(&dh[r * k.h + c]) : 0.0f);
    accumulate_outer(blk.act.data(), k.z, k.h, do1.data(), k.ne, k.ne, d_w_b->typed_data());
    accumulate_rows(do1.data(), k.ne, k.ne, d_c_b->typed_data());
    accumulate_outer(blk.act.data() + k.h, k.z, k.h, do2.data(), k.e, k.e, d_w_e->typed_data());
    accumulate_rows(do2.data(), k.e, k.e, d_c_e->typed_data());
    accumulate_outer(sb, k.s, k.s, dz.data(), k.z, k.z, d_w_s->typed_data());
    accumulate_rows(dz.data(), k.z, k.z, d_c_s->typed_data());
    for (int r = 0; r < kRows && r0 + r < rows; ++r)  // dL/ds = dz W_s^T, rows of W_s
      for (int j = 0; j < k.s; ++j) {
        v16 acc{};
        for (int c = 0; c < k.z; c += kLanes) acc += load(&dz[r * k.z + c]) * load(k.w_s + j * k.z + c);
        d_s->typed_data()[static_cast<int64_t>(r0 + r) * k.s + j] = hsum(acc);
      }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NetmarlQmixForward, forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // q
                                  .Arg<ffi::Buffer<ffi::F32>>()  // s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_e
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_e
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_g
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(NetmarlQmixBackward, backward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // q
                                  .Arg<ffi::Buffer<ffi::F32>>()  // s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_e
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_e
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dL/dQ_tot
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dL/dq
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dL/ds
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dW_s
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc_s
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dW_b
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc_b
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dW_e
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc_e
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_g
                                  .Ret<ffi::Buffer<ffi::F32>>());  // dc_g
