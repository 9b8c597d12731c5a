// CUDA fused pointwise parts of the LSTM and GRU cells: a thread per (b, j) hidden unit,
// grid-stride over B * H; adjacent threads take adjacent units, so every gate block
// ([B, k*H] rows) is read and written coalesced. The math is the CPU backend's, term for
// term (sigmoid as 1 / (1 + exp(-x))); bf16/f16 load into float and round once per store.
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
__device__ __forceinline__ ops::compute_t<T> ld(T v) {
  return ops::load_compute(v);
}
template <class T>
__device__ __forceinline__ T st(ops::compute_t<T> v) {
  return ops::store_compute<T>(v);
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
    using A = ops::compute_t<T>;
    const A i = sigmoid(ld(h[j]) + ld(x[j]));
    const A f = sigmoid(ld(h[H + j]) + ld(x[H + j]));
    const A g = std::tanh(ld(h[2 * H + j]) + ld(x[2 * H + j]));
    const A o = sigmoid(ld(h[3 * H + j]) + ld(x[3 * H + j]));
    const A cn = f * ld(c[e]) + i * g;
    c_out[e] = st<T>(cn);
    h_out[e] = st<T>(o * std::tanh(cn));
    a[j] = st<T>(i), a[H + j] = st<T>(f), a[2 * H + j] = st<T>(g), a[3 * H + j] = st<T>(o);
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
    using A = ops::compute_t<T>;
    const A i = ld(a[j]), f = ld(a[H + j]), g = ld(a[2 * H + j]), o = ld(a[3 * H + j]);
    const A tc = std::tanh(ld(c_out[e]));
    const A dh = ld(dh_out[e]);
    const A dct = ld(dc_out[e]) + dh * o * (A(1) - tc * tc);
    d[j] = st<T>(dct * g * i * (A(1) - i));
    d[H + j] = st<T>(dct * ld(c[e]) * f * (A(1) - f));
    d[2 * H + j] = st<T>(dct * i * (A(1) - g * g));
    d[3 * H + j] = st<T>(dh * tc * o * (A(1) - o));
    dc[e] = st<T>(dct * f);
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
    using A = ops::compute_t<T>;
    const A r = sigmoid(ld(hh[j]) + ld(x[j]));
    const A z = sigmoid(ld(hh[H + j]) + ld(x[H + j]));
    const A hn = ld(hh[2 * H + j]);
    const A n = std::tanh(ld(x[2 * H + j]) + hn * r);
    h_out[e] = st<T>((ld(h[e]) - n) * z + n);
    s[j] = st<T>(r), s[H + j] = st<T>(z), s[2 * H + j] = st<T>(n), s[3 * H + j] = hh[2 * H + j];
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
    using A = ops::compute_t<T>;
    const A r = ld(s[j]), z = ld(s[H + j]), n = ld(s[2 * H + j]), hn = ld(s[3 * H + j]);
    const A g = ld(dh_out[e]);
    const A dn = g * (A(1) - z) * (A(1) - n * n);
    const A dz = g * (ld(h[e]) - n) * z * (A(1) - z);
    const A dr = dn * hn * r * (A(1) - r);
    const T dr_t = st<T>(dr), dz_t = st<T>(dz);
    dx[j] = dr_t, dx[H + j] = dz_t, dx[2 * H + j] = st<T>(dn);
    dhh[j] = dr_t, dhh[H + j] = dz_t, dhh[2 * H + j] = st<T>(dn * r);
    dh[e] = st<T>(g * z);
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
  ops::dispatch_float_or_half(c.dtype(), "lstm_cell", [&]<class T>() {
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
  ops::dispatch_float_or_half(c.dtype(), "lstm_cell_backward", [&]<class T>() {
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
  ops::dispatch_float_or_half(h.dtype(), "gru_cell", [&]<class T>() {
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
  ops::dispatch_float_or_half(h.dtype(), "gru_cell_backward", [&]<class T>() {
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
