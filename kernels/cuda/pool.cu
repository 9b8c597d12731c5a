// CUDA 2-D pooling (NCHW, dense): max with int64 argmax indices, average and adaptive
// average, with the CPU backend's window arithmetic (PyTorch's rules).
// Forward: a thread per output element (coalesced writes; window sums in double, as on
// the CPU). Backward of average and adaptive average: a thread per input element that
// gathers the outputs whose windows cover it, in the CPU's (oh, ow) order, so no atomics
// and the CPU's exact sums. Backward of max: a warp per (n, c) plane walks the outputs
// 32 at a time; lanes routing to the same input are grouped with __match_any_sync and
// the lowest lane adds their values in lane order: the CPU's order, no atomics.
// bf16/f16 compare and accumulate in float and round once at the store; the max backward
// accumulates them in a float scratch plane, converted at the end.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/emu/cuda_compat.h"
#include "kernels/pool.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

using kernels::Pool2dParams;
using ops::GridTraits;

struct PoolTraits {
  static constexpr int kWarp = 32;
  static constexpr int kThreads = GridTraits::kThreads;
  static constexpr int kWarpsPerBlock = kThreads / kWarp;  // max backward: a warp per plane
  static_assert(kThreads % kWarp == 0 && kWarpsPerBlock >= 1);
};
using Tr = PoolTraits;

// Plane geometry: count = N * C planes of H x W in, OH x OW out.
struct Planes {
  int64_t count, H, W, OH, OW;
  IRIS_HD int64_t in_plane() const { return H * W; }
  IRIS_HD int64_t out_plane() const { return OH * OW; }
};

Planes planes_of(const Tensor& x, const Tensor& out) {
  return {x.size(0) * x.size(1), x.size(2), x.size(3), out.size(2), out.size(3)};
}

IRIS_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
IRIS_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// One axis of a max-pooling window: taps start, start + d, ... below end, all in range.
IRIS_HD void max_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t dilation,
                        int64_t in, int64_t& start, int64_t& end) {
  start = o * stride - pad;
  end = min64(start + (kernel - 1) * dilation + 1, in);
  while (start < 0) start += dilation;
}

// One axis of an average window clipped to the input, and its length clipped only to
// the padding (count_include_pad divides by that).
struct AvgWindow {
  int64_t start, end, padded_len;
};
IRIS_HD AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  const int64_t start = o * stride - pad;
  const int64_t end = min64(start + kernel, in + pad);
  return {max64(start, 0), min64(end, in), end - start};
}

IRIS_HD int64_t avg_divisor(const Pool2dParams& p, const AvgWindow& wh, const AvgWindow& ww) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return wh.padded_len * ww.padded_len;
  return (wh.end - wh.start) * (ww.end - ww.start);
}

// Adaptive bin i of `out` over `in`: [floor(i * in / out), ceil((i + 1) * in / out)).
IRIS_HD void adaptive_bin(int64_t i, int64_t in, int64_t out, int64_t& start, int64_t& end) {
  start = i * in / out;
  end = ((i + 1) * in + out - 1) / out;
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    max_pool_forward_kernel(const T* x, Pool2dParams p, Planes pl, T* out, int64_t* indices) {
  const int64_t n = pl.count * pl.out_plane();
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t plane = i / pl.out_plane(), o = i - plane * pl.out_plane();
    const int64_t oh = o / pl.OW, ow = o - oh * pl.OW;
    int64_t h0, h1, w0, w1;
    max_window(oh, p.stride_h, p.pad_h, p.kernel_h, p.dilation_h, pl.H, h0, h1);
    max_window(ow, p.stride_w, p.pad_w, p.kernel_w, p.dilation_w, pl.W, w0, w1);
    const T* in = x + plane * pl.in_plane();
    ops::compute_t<T> best = -INFINITY;
    int64_t best_i = h0 * pl.W + w0;
    for (int64_t ih = h0; ih < h1; ih += p.dilation_h) {
      for (int64_t iw = w0; iw < w1; iw += p.dilation_w) {
        const int64_t k = ih * pl.W + iw;
        const ops::compute_t<T> v = ops::load_compute(in[k]);
        if (v > best || v != v) best = v, best_i = k;  // the first maximum; NaN wins
      }
    }
    out[i] = ops::store_compute<T>(best);
    indices[i] = best_i;
  }
}

// A warp per plane: zero the plane, then route the outputs 32 at a time. Lanes with the
// same target form a group (__match_any_sync); its lowest lane adds the group's values
// from shared memory in lane order, so every input sums its outputs in increasing o.
// dinp is of the compute type A (dx itself, or a float scratch for bf16/f16).
template <class T, class A>
__global__ void __launch_bounds__(Tr::kThreads)
    max_pool_backward_kernel(const T* dout, const int64_t* indices, Planes pl, A* dinp) {
  IRIS_SHARED(A, vals, [Tr::kWarpsPerBlock][Tr::kWarp]);
  const int warp = static_cast<int>(threadIdx.x) / Tr::kWarp;
  const int lane = static_cast<int>(threadIdx.x) % Tr::kWarp;
  const int64_t in_plane = pl.in_plane(), out_plane = pl.out_plane();
  const int64_t warps = static_cast<int64_t>(gridDim.x) * Tr::kWarpsPerBlock;
  for (int64_t plane = static_cast<int64_t>(blockIdx.x) * Tr::kWarpsPerBlock + warp;
       plane < pl.count; plane += warps) {  // uniform per warp
    A* d = dinp + plane * in_plane;
    for (int64_t k = lane; k < in_plane; k += Tr::kWarp) d[k] = A(0);
    const T* g = dout + plane * out_plane;
    const int64_t* ip = indices + plane * out_plane;
    for (int64_t o0 = 0; o0 < out_plane; o0 += Tr::kWarp) {
      const int64_t o = o0 + lane;
      int64_t target = -1;  // a window wholly in the padding has no argmax: no gradient
      A v = A(0);
      if (o < out_plane) {
        const int64_t t = ip[o];
        if (t >= 0 && t < in_plane) target = t, v = ops::load_compute(g[o]);
      }
      vals[warp][lane] = v;
      const unsigned peers =
          __match_any_sync(ops::kFullMask, static_cast<unsigned long long>(target));
      __syncwarp(ops::kFullMask);  // vals written; the previous group's dinp writes visible
      if (target >= 0 && (peers & ((1u << lane) - 1u)) == 0u) {
        A acc = d[target];
        for (unsigned m = peers; m != 0u; m &= m - 1u) {
          const A pv = vals[warp][__ffs(static_cast<int>(m)) - 1];
          acc += pv;
        }
        d[target] = acc;
      }
      __syncwarp(ops::kFullMask);  // before vals is overwritten
    }
  }
}

// dinp = the float scratch rounded once (bf16/f16 max backward).
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    round_to_kernel(const float* acc, int64_t n, T* out) {
  IRIS_OPS_GRID_STRIDE(i, n) out[i] = ops::store_compute<T>(acc[i]);
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    avg_pool_forward_kernel(const T* x, Pool2dParams p, Planes pl, T* out) {
  const int64_t n = pl.count * pl.out_plane();
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t plane = i / pl.out_plane(), o = i - plane * pl.out_plane();
    const int64_t oh = o / pl.OW, ow = o - oh * pl.OW;
    const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kernel_h, pl.H);
    const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kernel_w, pl.W);
    if (wh.start >= wh.end || ww.start >= ww.end) {
      out[i] = T{};
      continue;
    }
    const T* in = x + plane * pl.in_plane();
    double sum = 0;
    for (int64_t ih = wh.start; ih < wh.end; ++ih)
      for (int64_t iw = ww.start; iw < ww.end; ++iw)
        sum += convert_value<double>(in[ih * pl.W + iw]);
    out[i] = convert_value<T>(sum / static_cast<double>(avg_divisor(p, wh, ww)));
  }
}

// Output rows o whose window [o * stride - pad, o * stride - pad + kernel) holds i.
IRIS_HD void covering(int64_t i, int64_t stride, int64_t pad, int64_t kernel, int64_t out,
                      int64_t& first, int64_t& last) {
  const int64_t lo = i + pad - kernel + 1;  // o * stride >= lo
  first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  last = min64((i + pad) / stride + 1, out);
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    avg_pool_backward_kernel(const T* dout, Pool2dParams p, Planes pl, T* dinp) {
  const int64_t n = pl.count * pl.in_plane();
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t plane = i / pl.in_plane(), k = i - plane * pl.in_plane();
    const int64_t ih = k / pl.W, iw = k - ih * pl.W;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, p.stride_h, p.pad_h, p.kernel_h, pl.OH, oh0, oh1);
    covering(iw, p.stride_w, p.pad_w, p.kernel_w, pl.OW, ow0, ow1);
    const T* g = dout + plane * pl.out_plane();
    ops::compute_t<T> acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kernel_h, pl.H);
      if (ih < wh.start || ih >= wh.end) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kernel_w, pl.W);
        if (iw < ww.start || iw >= ww.end) continue;
        acc += static_cast<ops::compute_t<T>>(convert_value<double>(g[oh * pl.OW + ow]) /
                                              static_cast<double>(avg_divisor(p, wh, ww)));
      }
    }
    dinp[i] = ops::store_compute<T>(acc);
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    adaptive_avg_forward_kernel(const T* x, Planes pl, T* out) {
  const int64_t n = pl.count * pl.out_plane();
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t plane = i / pl.out_plane(), o = i - plane * pl.out_plane();
    const int64_t oh = o / pl.OW, ow = o - oh * pl.OW;
    int64_t h0, h1, w0, w1;
    adaptive_bin(oh, pl.H, pl.OH, h0, h1);
    adaptive_bin(ow, pl.W, pl.OW, w0, w1);
    const T* in = x + plane * pl.in_plane();
    double sum = 0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) sum += convert_value<double>(in[ih * pl.W + iw]);
    out[i] = convert_value<T>(sum / static_cast<double>((h1 - h0) * (w1 - w0)));
  }
}

// Bins o that hold input i lie in [floor(i * out / in), ceil((i + 1) * out / in)).
IRIS_HD void adaptive_covering(int64_t i, int64_t in, int64_t out, int64_t& first, int64_t& last) {
  first = i * out / in;
  last = min64(((i + 1) * out + in - 1) / in, out);
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    adaptive_avg_backward_kernel(const T* dout, Planes pl, T* dinp) {
  const int64_t n = pl.count * pl.in_plane();
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t plane = i / pl.in_plane(), k = i - plane * pl.in_plane();
    const int64_t ih = k / pl.W, iw = k - ih * pl.W;
    int64_t oh0, oh1, ow0, ow1;
    adaptive_covering(ih, pl.H, pl.OH, oh0, oh1);
    adaptive_covering(iw, pl.W, pl.OW, ow0, ow1);
    const T* g = dout + plane * pl.out_plane();
    ops::compute_t<T> acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      int64_t h0, h1;
      adaptive_bin(oh, pl.H, pl.OH, h0, h1);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        int64_t w0, w1;
        adaptive_bin(ow, pl.W, pl.OW, w0, w1);
        if (iw < w0 || iw >= w1) continue;
        acc += static_cast<ops::compute_t<T>>(convert_value<double>(g[oh * pl.OW + ow]) /
                                              static_cast<double>((h1 - h0) * (w1 - w0)));
      }
    }
    dinp[i] = ops::store_compute<T>(acc);
  }
}

void check_dense(const char* op, const Tensor& a, const Tensor& b) {
  IRIS_CHECK(a.dim() == 4 && b.dim() == 4 && a.is_contiguous() && b.is_contiguous(), op,
             ": cuda expects dense [N, C, H, W] tensors, got ", a.desc(), " and ", b.desc());
}

void max_pool2d_forward_cuda(const Tensor& x, const Pool2dParams& p, const Tensor& out,
                             const Tensor& indices) {
  check_dense("max_pool2d", x, out);
  const Planes pl = planes_of(x, out);
  const int64_t n = pl.count * pl.out_plane();
  if (n == 0) return;
  ops::dispatch_float_or_half(x.dtype(), "max_pool2d", [&]<class T>() {
    IRIS_LAUNCH(max_pool_forward_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(x), p, pl, ops::ptr<T>(out), ops::ptr<int64_t>(indices));
  });
}

void max_pool2d_backward_cuda(const Tensor& dout, const Tensor& indices, const Tensor& dinp) {
  check_dense("max_pool2d_backward", dout, dinp);
  const Planes pl = planes_of(dinp, dout);
  if (pl.count * pl.in_plane() == 0) return;
  ops::dispatch_float_or_half(dout.dtype(), "max_pool2d_backward", [&]<class T>() {
    using A = ops::compute_t<T>;
    const dim3 grid = ops::flat_grid(pl.count, Tr::kWarpsPerBlock);
    if constexpr (ops::is_half_v<T>) {
      const int64_t n = pl.count * pl.in_plane();
      const Tensor acc = Tensor::empty({n}, DType::f32, dinp.device());
      IRIS_LAUNCH((max_pool_backward_kernel<T, A>), grid, dim3(Tr::kThreads), 0, nullptr,
                  ops::ptr<const T>(dout), ops::ptr<const int64_t>(indices), pl,
                  ops::ptr<float>(acc));
      IRIS_LAUNCH(round_to_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                  ops::ptr<const float>(acc), n, ops::ptr<T>(dinp));
    } else {
      IRIS_LAUNCH((max_pool_backward_kernel<T, A>), grid, dim3(Tr::kThreads), 0, nullptr,
                  ops::ptr<const T>(dout), ops::ptr<const int64_t>(indices), pl, ops::ptr<T>(dinp));
    }
  });
}

void avg_pool2d_forward_cuda(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  check_dense("avg_pool2d", x, out);
  const Planes pl = planes_of(x, out);
  const int64_t n = pl.count * pl.out_plane();
  if (n == 0) return;
  ops::dispatch_float_or_half(x.dtype(), "avg_pool2d", [&]<class T>() {
    IRIS_LAUNCH(avg_pool_forward_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(x), p, pl, ops::ptr<T>(out));
  });
}

void avg_pool2d_backward_cuda(const Tensor& dout, const Pool2dParams& p, const Tensor& dinp) {
  check_dense("avg_pool2d_backward", dout, dinp);
  const Planes pl = planes_of(dinp, dout);
  const int64_t n = pl.count * pl.in_plane();
  if (n == 0) return;
  ops::dispatch_float_or_half(dout.dtype(), "avg_pool2d_backward", [&]<class T>() {
    IRIS_LAUNCH(avg_pool_backward_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(dout), p, pl, ops::ptr<T>(dinp));
  });
}

void adaptive_avg_pool2d_forward_cuda(const Tensor& x, const Tensor& out) {
  check_dense("adaptive_avg_pool2d", x, out);
  const Planes pl = planes_of(x, out);
  const int64_t n = pl.count * pl.out_plane();
  if (n == 0) return;
  ops::dispatch_float_or_half(x.dtype(), "adaptive_avg_pool2d", [&]<class T>() {
    IRIS_LAUNCH(adaptive_avg_forward_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(x), pl, ops::ptr<T>(out));
  });
}

void adaptive_avg_pool2d_backward_cuda(const Tensor& dout, const Tensor& dinp) {
  check_dense("adaptive_avg_pool2d_backward", dout, dinp);
  const Planes pl = planes_of(dinp, dout);
  const int64_t n = pl.count * pl.in_plane();
  if (n == 0) return;
  ops::dispatch_float_or_half(dout.dtype(), "adaptive_avg_pool2d_backward", [&]<class T>() {
    IRIS_LAUNCH(adaptive_avg_backward_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const T>(dout), pl, ops::ptr<T>(dinp));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(max_pool2d_forward, CUDA, max_pool2d_forward_cuda);
IRIS_REGISTER_KERNEL(max_pool2d_backward, CUDA, max_pool2d_backward_cuda);
IRIS_REGISTER_KERNEL(avg_pool2d_forward, CUDA, avg_pool2d_forward_cuda);
IRIS_REGISTER_KERNEL(avg_pool2d_backward, CUDA, avg_pool2d_backward_cuda);
IRIS_REGISTER_KERNEL(adaptive_avg_pool2d_forward, CUDA, adaptive_avg_pool2d_forward_cuda);
IRIS_REGISTER_KERNEL(adaptive_avg_pool2d_backward, CUDA, adaptive_avg_pool2d_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
