// CPU fused gate kernels of the LSTM and GRU cells: one pass over [B, H] forward,
// one pass backward from the saved activations. Rows are split over the pool. bf16/f16
// load into float, compute as float does and round once at each store.
#include "kernels/rnn.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(lstm_cell_forward)
IRIS_DEFINE_KERNEL_TABLE(lstm_cell_backward)
IRIS_DEFINE_KERNEL_TABLE(gru_cell_forward)
IRIS_DEFINE_KERNEL_TABLE(gru_cell_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct RnnKernelTraits {
  // Hidden units per thread at least (each costs a few exp/tanh).
  static constexpr int64_t kGrainElements = 4096;
  static_assert(kGrainElements >= 256);
};

// PyTorch's CPU form, so float results round the same way.
template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// Calls row(b) for each of the B rows, rows split over the pool.
template <class Row>
void for_rows(int64_t B, int64_t H, Row row) {
  const int64_t grain =
      std::max<int64_t>(1, RnnKernelTraits::kGrainElements / std::max<int64_t>(1, H));
  parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) row(b);
  });
}

template <class T>
const T* ptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mut(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

void lstm_cell_forward_cpu(const Tensor& gates_x, const Tensor& gates_h, const Tensor& c,
                           const Tensor& h_out, const Tensor& c_out, const Tensor& act) {
  const int64_t B = c.size(0), H = c.size(1);
  dispatch_float_or_half(c.dtype(), "lstm_cell", [&]<class T>() {
    using A = compute_t<T>;
    auto ld = [](T v) { return load_compute(v); };
    for_rows(B, H,
             [&, gx = ptr<T>(gates_x), gh = ptr<T>(gates_h), cp = ptr<T>(c), hy = mut<T>(h_out),
              cy = mut<T>(c_out), a = mut<T>(act)](int64_t b) {
               const T* x = gx + b * 4 * H;
               const T* h = gh + b * 4 * H;
               T* ab = a + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const A i = sigmoid(ld(h[j]) + ld(x[j]));
                 const A f = sigmoid(ld(h[H + j]) + ld(x[H + j]));
                 const A g = std::tanh(ld(h[2 * H + j]) + ld(x[2 * H + j]));
                 const A o = sigmoid(ld(h[3 * H + j]) + ld(x[3 * H + j]));
                 const A cn = f * ld(cp[b * H + j]) + i * g;
                 cy[b * H + j] = store_compute<T>(cn);
                 hy[b * H + j] = store_compute<T>(o * std::tanh(cn));
                 ab[j] = store_compute<T>(i), ab[H + j] = store_compute<T>(f);
                 ab[2 * H + j] = store_compute<T>(g), ab[3 * H + j] = store_compute<T>(o);
               }
             });
  });
}

void lstm_cell_backward_cpu(const Tensor& dh_out, const Tensor& dc_out, const Tensor& act,
                            const Tensor& c, const Tensor& c_out, const Tensor& dgates,
                            const Tensor& dc) {
  const int64_t B = c.size(0), H = c.size(1);
  dispatch_float_or_half(c.dtype(), "lstm_cell_backward", [&]<class T>() {
    using A = compute_t<T>;
    auto ld = [](T v) { return load_compute(v); };
    for_rows(B, H,
             [&, dhy = ptr<T>(dh_out), dcy = ptr<T>(dc_out), a = ptr<T>(act), cp = ptr<T>(c),
              cy = ptr<T>(c_out), dg = mut<T>(dgates), dcp = mut<T>(dc)](int64_t b) {
               const T* ab = a + b * 4 * H;
               T* db = dg + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const int64_t e = b * H + j;
                 const A i = ld(ab[j]), f = ld(ab[H + j]), g = ld(ab[2 * H + j]),
                         o = ld(ab[3 * H + j]);
                 const A tc = std::tanh(ld(cy[e]));
                 const A dh = ld(dhy[e]);
                 const A dct = ld(dcy[e]) + dh * o * (A(1) - tc * tc);
                 db[j] = store_compute<T>(dct * g * i * (A(1) - i));
                 db[H + j] = store_compute<T>(dct * ld(cp[e]) * f * (A(1) - f));
                 db[2 * H + j] = store_compute<T>(dct * i * (A(1) - g * g));
                 db[3 * H + j] = store_compute<T>(dh * tc * o * (A(1) - o));
                 dcp[e] = store_compute<T>(dct * f);
               }
             });
  });
}

void gru_cell_forward_cpu(const Tensor& gates_x, const Tensor& gates_h, const Tensor& h,
                          const Tensor& h_out, const Tensor& saved) {
  const int64_t B = h.size(0), H = h.size(1);
  dispatch_float_or_half(h.dtype(), "gru_cell", [&]<class T>() {
    using A = compute_t<T>;
    auto ld = [](T v) { return load_compute(v); };
    for_rows(B, H,
             [&, gx = ptr<T>(gates_x), gh = ptr<T>(gates_h), hp = ptr<T>(h), hy = mut<T>(h_out),
              s = mut<T>(saved)](int64_t b) {
               const T* x = gx + b * 3 * H;
               const T* hh = gh + b * 3 * H;
               T* sb = s + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const A r = sigmoid(ld(hh[j]) + ld(x[j]));
                 const A z = sigmoid(ld(hh[H + j]) + ld(x[H + j]));
                 const A hn = ld(hh[2 * H + j]);
                 const A n = std::tanh(ld(x[2 * H + j]) + hn * r);
                 hy[b * H + j] = store_compute<T>((ld(hp[b * H + j]) - n) * z + n);
                 sb[j] = store_compute<T>(r), sb[H + j] = store_compute<T>(z);
                 sb[2 * H + j] = store_compute<T>(n), sb[3 * H + j] = hh[2 * H + j];
               }
             });
  });
}

void gru_cell_backward_cpu(const Tensor& dh_out, const Tensor& saved, const Tensor& h,
                           const Tensor& dgates_x, const Tensor& dgates_h, const Tensor& dh) {
  const int64_t B = h.size(0), H = h.size(1);
  dispatch_float_or_half(h.dtype(), "gru_cell_backward", [&]<class T>() {
    using A = compute_t<T>;
    auto ld = [](T v) { return load_compute(v); };
    for_rows(B, H,
             [&, dhy = ptr<T>(dh_out), s = ptr<T>(saved), hp = ptr<T>(h), dgx = mut<T>(dgates_x),
              dgh = mut<T>(dgates_h), dhp = mut<T>(dh)](int64_t b) {
               const T* sb = s + b * 4 * H;
               T* dx = dgx + b * 3 * H;
               T* dhh = dgh + b * 3 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const int64_t e = b * H + j;
                 const A r = ld(sb[j]), z = ld(sb[H + j]), n = ld(sb[2 * H + j]),
                         hn = ld(sb[3 * H + j]);
                 const A g = ld(dhy[e]);
                 const A dn = g * (A(1) - z) * (A(1) - n * n);
                 const A dz = g * (ld(hp[e]) - n) * z * (A(1) - z);
                 const A dr = dn * hn * r * (A(1) - r);
                 const T dr_t = store_compute<T>(dr), dz_t = store_compute<T>(dz);
                 dx[j] = dr_t, dx[H + j] = dz_t, dx[2 * H + j] = store_compute<T>(dn);
                 dhh[j] = dr_t, dhh[H + j] = dz_t, dhh[2 * H + j] = store_compute<T>(dn * r);
                 dhp[e] = store_compute<T>(g * z);
               }
             });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(lstm_cell_forward, CPU, lstm_cell_forward_cpu);
IRIS_REGISTER_KERNEL(lstm_cell_backward, CPU, lstm_cell_backward_cpu);
IRIS_REGISTER_KERNEL(gru_cell_forward, CPU, gru_cell_forward_cpu);
IRIS_REGISTER_KERNEL(gru_cell_backward, CPU, gru_cell_backward_cpu);

}  // namespace iris::cpu
