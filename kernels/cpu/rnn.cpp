// CPU fused gate kernels of the LSTM and GRU cells: one pass over [B, H] forward,
// one pass backward from the saved activations. Rows are split over the pool.
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
  dispatch_float(c.dtype(), "lstm_cell", [&]<class T>() {
    for_rows(B, H,
             [&, gx = ptr<T>(gates_x), gh = ptr<T>(gates_h), cp = ptr<T>(c), hy = mut<T>(h_out),
              cy = mut<T>(c_out), a = mut<T>(act)](int64_t b) {
               const T* x = gx + b * 4 * H;
               const T* h = gh + b * 4 * H;
               T* ab = a + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const T i = sigmoid(h[j] + x[j]);
                 const T f = sigmoid(h[H + j] + x[H + j]);
                 const T g = std::tanh(h[2 * H + j] + x[2 * H + j]);
                 const T o = sigmoid(h[3 * H + j] + x[3 * H + j]);
                 const T cn = f * cp[b * H + j] + i * g;
                 cy[b * H + j] = cn;
                 hy[b * H + j] = o * std::tanh(cn);
                 ab[j] = i, ab[H + j] = f, ab[2 * H + j] = g, ab[3 * H + j] = o;
               }
             });
  });
}

void lstm_cell_backward_cpu(const Tensor& dh_out, const Tensor& dc_out, const Tensor& act,
                            const Tensor& c, const Tensor& c_out, const Tensor& dgates,
                            const Tensor& dc) {
  const int64_t B = c.size(0), H = c.size(1);
  dispatch_float(c.dtype(), "lstm_cell_backward", [&]<class T>() {
    for_rows(B, H,
             [&, dhy = ptr<T>(dh_out), dcy = ptr<T>(dc_out), a = ptr<T>(act), cp = ptr<T>(c),
              cy = ptr<T>(c_out), dg = mut<T>(dgates), dcp = mut<T>(dc)](int64_t b) {
               const T* ab = a + b * 4 * H;
               T* db = dg + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const int64_t e = b * H + j;
                 const T i = ab[j], f = ab[H + j], g = ab[2 * H + j], o = ab[3 * H + j];
                 const T tc = std::tanh(cy[e]);
                 const T dct = dcy[e] + dhy[e] * o * (T(1) - tc * tc);
                 db[j] = dct * g * i * (T(1) - i);
                 db[H + j] = dct * cp[e] * f * (T(1) - f);
                 db[2 * H + j] = dct * i * (T(1) - g * g);
                 db[3 * H + j] = dhy[e] * tc * o * (T(1) - o);
                 dcp[e] = dct * f;
               }
             });
  });
}

void gru_cell_forward_cpu(const Tensor& gates_x, const Tensor& gates_h, const Tensor& h,
                          const Tensor& h_out, const Tensor& saved) {
  const int64_t B = h.size(0), H = h.size(1);
  dispatch_float(h.dtype(), "gru_cell", [&]<class T>() {
    for_rows(B, H,
             [&, gx = ptr<T>(gates_x), gh = ptr<T>(gates_h), hp = ptr<T>(h), hy = mut<T>(h_out),
              s = mut<T>(saved)](int64_t b) {
               const T* x = gx + b * 3 * H;
               const T* hh = gh + b * 3 * H;
               T* sb = s + b * 4 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const T r = sigmoid(hh[j] + x[j]);
                 const T z = sigmoid(hh[H + j] + x[H + j]);
                 const T hn = hh[2 * H + j];
                 const T n = std::tanh(x[2 * H + j] + hn * r);
                 hy[b * H + j] = (hp[b * H + j] - n) * z + n;
                 sb[j] = r, sb[H + j] = z, sb[2 * H + j] = n, sb[3 * H + j] = hn;
               }
             });
  });
}

void gru_cell_backward_cpu(const Tensor& dh_out, const Tensor& saved, const Tensor& h,
                           const Tensor& dgates_x, const Tensor& dgates_h, const Tensor& dh) {
  const int64_t B = h.size(0), H = h.size(1);
  dispatch_float(h.dtype(), "gru_cell_backward", [&]<class T>() {
    for_rows(B, H,
             [&, dhy = ptr<T>(dh_out), s = ptr<T>(saved), hp = ptr<T>(h), dgx = mut<T>(dgates_x),
              dgh = mut<T>(dgates_h), dhp = mut<T>(dh)](int64_t b) {
               const T* sb = s + b * 4 * H;
               T* dx = dgx + b * 3 * H;
               T* dhh = dgh + b * 3 * H;
               for (int64_t j = 0; j < H; ++j) {
                 const int64_t e = b * H + j;
                 const T r = sb[j], z = sb[H + j], n = sb[2 * H + j], hn = sb[3 * H + j];
                 const T g = dhy[e];
                 const T dn = g * (T(1) - z) * (T(1) - n * n);
                 const T dz = g * (hp[e] - n) * z * (T(1) - z);
                 const T dr = dn * hn * r * (T(1) - r);
                 dx[j] = dr, dx[H + j] = dz, dx[2 * H + j] = dn;
                 dhh[j] = dr, dhh[H + j] = dz, dhh[2 * H + j] = dn * r;
                 dhp[e] = g * z;
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
