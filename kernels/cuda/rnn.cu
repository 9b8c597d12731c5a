// CUDA fused pointwise parts of the LSTM and GRU cells: a thread per (b, j) hidden unit,
// grid-stride over B * H; adjacent threads take adjacent units, so every gate block
// ([B, k*H] rows) is read and written coalesced. The math is the CPU backend's, term for
// term (sigmoid as 1 / (1 + exp(-x))).
#include <cmath>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/emu/cuda_compat.h"
#include "kernels/rnn.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct RnnCellTraits {
  static constexpr int kThreads = ops::GridTraits::kThreads;
  static_assert(kThreads % 32 == 0);
};
using Tr = RnnCellTraits;

template <class T>
__device__ __forceinline__ T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    lstm_forward_kernel(const T* gx, const T* gh, const T* c, int64_t B, int64_t H, T* h_out,
                        T* c_out, T* act) {
  IRIS_OPS_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    const T* x = gx + b * 4 * H;
    const T* h = gh + b * 4 * H;
    T* a = act + b * 4 * H;
    const T i = sigmoid(h[j] + x[j]);
    const T f = sigmoid(h[H + j] + x[H + j]);
    const T g = std::tanh(h[2 * H + j] + x[2 * H + j]);
    const T o = sigmoid(h[3 * H + j] + x[3 * H + j]);
    const T cn = f * c[e] + i * g;
    c_out[e] = cn;
    h_out[e] = o * std::tanh(cn);
    a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    lstm_backward_kernel(const T* dh_out, const T* dc_out, const T* act, const T* c, const T* c_out,
                         int64_t B, int64_t H, T* dgates, T* dc) {
  IRIS_OPS_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    const T* a = act + b * 4 * H;
    T* d = dgates + b * 4 * H;
    const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
    const T tc = std::tanh(c_out[e]);
    const T dh = dh_out[e];
    const T dct = dc_out[e] + dh * o * (T(1) - tc * tc);
    d[j] = dct * g * i * (T(1) - i);
    d[H + j] = dct * c[e] * f * (T(1) - f);
    d[2 * H + j] = dct * i * (T(1) - g * g);
    d[3 * H + j] = dh * tc * o * (T(1) - o);
    dc[e] = dct * f;
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    gru_forward_kernel(const T* gx, const T* gh, const T* h, int64_t B, int64_t H, T* h_out,
                       T* saved) {
  IRIS_OPS_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    const T* x = gx + b * 3 * H;
    const T* hh = gh + b * 3 * H;
    T* s = saved + b * 4 * H;
    const T r = sigmoid(hh[j] + x[j]);
    const T z = sigmoid(hh[H + j] + x[H + j]);
    const T hn = hh[2 * H + j];
    const T n = std::tanh(x[2 * H + j] + hn * r);
    h_out[e] = (h[e] - n) * z + n;
    s[j] = r, s[H + j] = z, s[2 * H + j] = n, s[3 * H + j] = hn;
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    gru_backward_kernel(const T* dh_out, const T* saved, const T* h, int64_t B, int64_t H, T* dgx,
                        T* dgh, T* dh) {
  IRIS_OPS_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    const T* s = saved + b * 4 * H;
    T* dx = dgx + b * 3 * H;
    T* dhh = dgh + b * 3 * H;
    const T r = s[j], z = s[H + j], n = s[2 * H + j], hn = s[3 * H + j];
    const T g = dh_out[e];
    const T dn = g * (T(1) - z) * (T(1) - n * n);
    const T dz = g * (h[e] - n) * z * (T(1) - z);
    const T dr = dn * hn * r * (T(1) - r);
    dx[j] = dr, dx[H + j] = dz, dx[2 * H + j] = dn;
    dhh[j] = dr, dhh[H + j] = dz, dhh[2 * H + j] = dn * r;
    dh[e] = g * z;
  }
}

void check_dense(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    IRIS_CHECK(t->dim() == 2 && t->is_contiguous(), op,
               ": cuda expects dense [B, k*H] tensors, got ", t->desc());
}

void lstm_cell_forward_cuda(const Tensor& gates_x, const Tensor& gates_h, const Tensor& c,
                            const Tensor& h_out, const Tensor& c_out, const Tensor& act) {
  check_dense("lstm_cell", {&gates_x, &gates_h, &c, &h_out, &c_out, &act});
  const int64_t B = c.size(0), H = c.size(1);
  if (B * H == 0) return;
  ops::dispatch_float(c.dtype(), "lstm_cell", [&]<class T>() {
    IRIS_LAUNCH(lstm_forward_kernel<T>, ops::flat_grid(B * H), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(gates_x), ops::ptr<const T>(gates_h), ops::ptr<const T>(c), B, H,
                ops::ptr<T>(h_out), ops::ptr<T>(c_out), ops::ptr<T>(act));
  });
}

void lstm_cell_backward_cuda(const Tensor& dh_out, const Tensor& dc_out, const Tensor& act,
                             const Tensor& c, const Tensor& c_out, const Tensor& dgates,
                             const Tensor& dc) {
  check_dense("lstm_cell_backward", {&dh_out, &dc_out, &act, &c, &c_out, &dgates, &dc});
  const int64_t B = c.size(0), H = c.size(1);
  if (B * H == 0) return;
  ops::dispatch_float(c.dtype(), "lstm_cell_backward", [&]<class T>() {
    IRIS_LAUNCH(lstm_backward_kernel<T>, ops::flat_grid(B * H), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(dh_out), ops::ptr<const T>(dc_out), ops::ptr<const T>(act),
                ops::ptr<const T>(c), ops::ptr<const T>(c_out), B, H, ops::ptr<T>(dgates),
                ops::ptr<T>(dc));
  });
}

void gru_cell_forward_cuda(const Tensor& gates_x, const Tensor& gates_h, const Tensor& h,
                           const Tensor& h_out, const Tensor& saved) {
  check_dense("gru_cell", {&gates_x, &gates_h, &h, &h_out, &saved});
  const int64_t B = h.size(0), H = h.size(1);
  if (B * H == 0) return;
  ops::dispatch_float(h.dtype(), "gru_cell", [&]<class T>() {
    IRIS_LAUNCH(gru_forward_kernel<T>, ops::flat_grid(B * H), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(gates_x), ops::ptr<const T>(gates_h), ops::ptr<const T>(h), B, H,
                ops::ptr<T>(h_out), ops::ptr<T>(saved));
  });
}

void gru_cell_backward_cuda(const Tensor& dh_out, const Tensor& saved, const Tensor& h,
                            const Tensor& dgates_x, const Tensor& dgates_h, const Tensor& dh) {
  check_dense("gru_cell_backward", {&dh_out, &saved, &h, &dgates_x, &dgates_h, &dh});
  const int64_t B = h.size(0), H = h.size(1);
  if (B * H == 0) return;
  ops::dispatch_float(h.dtype(), "gru_cell_backward", [&]<class T>() {
    IRIS_LAUNCH(gru_backward_kernel<T>, ops::flat_grid(B * H), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(dh_out), ops::ptr<const T>(saved), ops::ptr<const T>(h), B, H,
                ops::ptr<T>(dgates_x), ops::ptr<T>(dgates_h), ops::ptr<T>(dh));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(lstm_cell_forward, CUDA, lstm_cell_forward_cuda);
IRIS_REGISTER_KERNEL(lstm_cell_backward, CUDA, lstm_cell_backward_cuda);
IRIS_REGISTER_KERNEL(gru_cell_forward, CUDA, gru_cell_forward_cuda);
IRIS_REGISTER_KERNEL(gru_cell_backward, CUDA, gru_cell_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
