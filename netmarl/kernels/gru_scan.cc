// The GRU recurrence of the value-decomposition learners, forward and backward, as XLA FFI
// CPU kernels (see netmarl/kernels/__init__.py for why and how they are built and used).
//
// Flax GRUCell, gates in the order (r, z, n):
//   r = sigmoid(gi_r + h W_r),  z = sigmoid(gi_z + h W_z),
//   n = tanh(gi_n + r (h W_n + b_n)),  h' = (1 - z) n + z h,
// where gi = e W_i + b_i, the input side, is computed by XLA for all steps at once. Per step
// the recurrent product h [B, H] x W [H, 3H] is one register-blocked loop nest (GCC vector
// extensions: AVX-512 where the machine has it), followed by the gates, row block by row
// block while the rows are still in L1, with a vectorised exp of our own (so that neither
// -ffast-math nor glibc's vector maths library is needed).
//
// Layouts, all float32 row-major: gi [T, B, 3H], h0 [B, H], W [H, 3H] (W_r | W_z | W_n),
// b_n [H]; hs [T, B, H]; saved factors F [T, B, 5H] = (z, a, k_n, k_r, k_z) with
// a = (1 - z)(1 - n^2), k_n = a r, k_r = k_n (h W_n + b_n)(1 - r), k_z = (h - n) z (1 - z):
// the local derivatives of h' with respect to (h directly, gi_n, h W_n + b_n, gi_r, gi_z).
// The backward pass takes dL/dhs [T, B, H] and returns dL/dh0 [B, H] and the gate
// gradients of the recurrent side G_h = dh (k_r, k_z, k_n) and of the input side
// G_i = dh (k_r, k_z, a), both [T, B, 3H], from which XLA forms every weight gradient as one
// large matmul. H must be a multiple of 16 (the Python side checks).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using namespace netmarl;

// One forward step for rows [B, H]; writes h_next and (if f) the factors. The gates of a
// row are computed 16 lanes at a time right after its product, while it is in cache.
void forward_step(const float* __restrict gi, const float* __restrict h,
                  const float* __restrict w, const float* __restrict b_n, int rows, int hidden,
                  float* __restrict h_next, float* __restrict f, float* __restrict scratch) {
  const int h3 = 3 * hidden;
  matmul(h, rows, hidden, w, h3, scratch);  // [B, 3H] = h W
  for (int b = 0; b < rows; ++b) {
    const float* g = gi + static_cast<int64_t>(b) * h3;
    const float* s = scratch + static_cast<int64_t>(b) * h3;
    const float* hb = h + static_cast<int64_t>(b) * hidden;
    float* out = h_next + static_cast<int64_t>(b) * hidden;
    float* fb = f ? f + static_cast<int64_t>(b) * 5 * hidden : nullptr;
    for (int j = 0; j < hidden; j += kLanes) {
      const v16 r = vsigmoid(load(g + j) + load(s + j));
      const v16 z = vsigmoid(load(g + hidden + j) + load(s + hidden + j));
      const v16 hn = load(s + 2 * hidden + j) + load(b_n + j);
      const v16 n = vtanh(load(g + 2 * hidden + j) + r * hn);
      const v16 h_prev = load(hb + j);
      store(out + j, (1.0f - z) * n + z * h_prev);
      if (fb) {
        const v16 a = (1.0f - z) * (1.0f - n * n);
        const v16 k_n = a * r;
        store(fb + j, z);
        store(fb + hidden + j, a);
        store(fb + 2 * hidden + j, k_n);
        store(fb + 3 * hidden + j, k_n * hn * (1.0f - r));
        store(fb + 4 * hidden + j, (h_prev - n) * z * (1.0f - z));
      }
    }
  }
}

ffi::Error forward(ffi::Buffer<ffi::F32> gi, ffi::Buffer<ffi::F32> h0, ffi::Buffer<ffi::F32> w,
                   ffi::Buffer<ffi::F32> b_n, ffi::ResultBuffer<ffi::F32> hs,
                   ffi::ResultBuffer<ffi::F32>* factors) {
  const auto dims = gi.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("gi must be [T, B, 3H]");
  const int steps = static_cast<int>(dims[0]), rows = static_cast<int>(dims[1]);
  const int hidden = static_cast<int>(dims[2]) / 3;
  std::vector<float> scratch(static_cast<size_t>(rows) * 3 * hidden);
  const int64_t step_in = static_cast<int64_t>(rows) * 3 * hidden;
  const int64_t step_h = static_cast<int64_t>(rows) * hidden;
  const float* h = h0.typed_data();
  float* out = hs->typed_data();
  float* f = factors ? (*factors)->typed_data() : nullptr;
  for (int t = 0; t < steps; ++t) {
    forward_step(gi.typed_data() + t * step_in, h, w.typed_data(), b_n.typed_data(), rows,
                 hidden, out + t * step_h, f ? f + 5 * t * step_h : nullptr, scratch.data());
    h = out + t * step_h;
  }
  return ffi::Error::Success();
}

ffi::Error forward_plain(ffi::Buffer<ffi::F32> gi, ffi::Buffer<ffi::F32> h0,
                         ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> b_n,
                         ffi::ResultBuffer<ffi::F32> hs) {
  return forward(gi, h0, w, b_n, hs, nullptr);
}

ffi::Error forward_save(ffi::Buffer<ffi::F32> gi, ffi::Buffer<ffi::F32> h0,
                        ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> b_n,
                        ffi::ResultBuffer<ffi::F32> hs, ffi::ResultBuffer<ffi::F32> factors) {
  return forward(gi, h0, w, b_n, hs, &factors);
}

// Reverse-mode through the recurrence: dL/dh_t = dL/dhs_t + dL/dh_t via h_{t+1}, with
// dL/dh_{t-1} = dh z + (dh k_r) W_r^T + (dh k_z) W_z^T + (dh k_n) W_n^T = dh z + G_h W^T.
ffi::Error backward(ffi::Buffer<ffi::F32> d_hs, ffi::Buffer<ffi::F32> factors,
                    ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> dh0,
                    ffi::ResultBuffer<ffi::F32> g_h, ffi::ResultBuffer<ffi::F32> g_i) {
  const auto dims = d_hs.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("d_hs must be [T, B, H]");
  const int steps = static_cast<int>(dims[0]), rows = static_cast<int>(dims[1]);
  const int hidden = static_cast<int>(dims[2]), h3 = 3 * hidden;
  std::vector<float> w_t(static_cast<size_t>(h3) * hidden);  // W^T [3H, H]
  for (int k = 0; k < hidden; ++k)
    for (int c = 0; c < h3; ++c) w_t[static_cast<size_t>(c) * hidden + k] = w.typed_data()[k * h3 + c];
  std::vector<float> dh(static_cast<size_t>(rows) * hidden, 0.0f), recurrent(dh.size());
  const int64_t step_h = static_cast<int64_t>(rows) * hidden;
  for (int t = steps - 1; t >= 0; --t) {
    const float* d_out = d_hs.typed_data() + t * step_h;
    const float* f = factors.typed_data() + 5 * t * step_h;
    float* gh = g_h->typed_data() + 3 * t * step_h;
    float* gi = g_i->typed_data() + 3 * t * step_h;
    for (int b = 0; b < rows; ++b) {
      const float* fb = f + static_cast<int64_t>(b) * 5 * hidden;
      const float* db = d_out + static_cast<int64_t>(b) * hidden;
      float* d = dh.data() + static_cast<int64_t>(b) * hidden;
      float* ghb = gh + static_cast<int64_t>(b) * h3;
      float* gib = gi + static_cast<int64_t>(b) * h3;
      for (int j = 0; j < hidden; j += kLanes) {
        const v16 total = load(d + j) + load(db + j);  // dL/dh_t
        const v16 dr = total * load(fb + 3 * hidden + j), dz = total * load(fb + 4 * hidden + j);
        store(ghb + j, dr);
        store(gib + j, dr);
        store(ghb + hidden + j, dz);
        store(gib + hidden + j, dz);
        store(ghb + 2 * hidden + j, total * load(fb + 2 * hidden + j));
        store(gib + 2 * hidden + j, total * load(fb + hidden + j));
        store(d + j, total * load(fb + j));  // the direct path h -> h' (weight z)
      }
    }
    matmul(gh, rows, h3, w_t.data(), hidden, recurrent.data());
    for (size_t i = 0; i < dh.size(); ++i) dh[i] += recurrent[i];
  }
  std::memcpy(dh0->typed_data(), dh.data(), dh.size() * sizeof(float));
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NetmarlGruForward, forward_plain,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(NetmarlGruForwardSave, forward_save,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(NetmarlGruBackward, backward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
