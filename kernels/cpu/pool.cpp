// CPU 2-D pooling: max (with int64 argmax indices), average and adaptive average, with
// PyTorch's window arithmetic. Threads take whole (n, c) planes, so the backward
// scatters never race. Sums accumulate in double, as PyTorch's CPU kernels do; bf16/f16
// compare in float and accumulate gradients in a float plane, rounding once at the store.
#include "kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/loops.h"

namespace iris::kernels {

IRIS_DEFINE_KERNEL_TABLE(max_pool2d_forward)
IRIS_DEFINE_KERNEL_TABLE(max_pool2d_backward)
IRIS_DEFINE_KERNEL_TABLE(avg_pool2d_forward)
IRIS_DEFINE_KERNEL_TABLE(avg_pool2d_backward)
IRIS_DEFINE_KERNEL_TABLE(adaptive_avg_pool2d_forward)
IRIS_DEFINE_KERNEL_TABLE(adaptive_avg_pool2d_backward)

}  // namespace iris::kernels

namespace iris::cpu {
namespace {

using kernels::Pool2dParams;

struct PoolTraits {
  // Elements touched per parallel chunk of planes.
  static constexpr int64_t kGrainElements = int64_t(1) << 15;
};
static_assert(PoolTraits::kGrainElements > 0);

struct Planes {
  int64_t count, H, W, OH, OW;
  Planes(const Tensor& x, const Tensor& out)
      : count(x.size(0) * x.size(1)),
        H(x.size(2)),
        W(x.size(3)),
        OH(out.size(2)),
        OW(out.size(3)) {}
  int64_t in_plane() const { return H * W; }
  int64_t out_plane() const { return OH * OW; }
  // Runs fn(plane) over every (n, c) plane on the pool.
  template <class Fn>
  void run(Fn&& fn) const {
    const int64_t work = std::max<int64_t>(1, in_plane() + out_plane());
    parallel_for(0, count, std::max<int64_t>(1, PoolTraits::kGrainElements / work),
                 [&](int64_t b, int64_t e) {
                   for (int64_t i = b; i < e; ++i) fn(i);
                 });
  }
};

// One axis of a max-pooling window: taps start, start + d, ... below end, all in range.
struct MaxWindow {
  int64_t start, end;
};
MaxWindow max_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t dilation,
                     int64_t in) {
  int64_t start = o * stride - pad;
  const int64_t end = std::min(start + (kernel - 1) * dilation + 1, in);
  while (start < 0) start += dilation;
  return {start, end};
}

template <class T>
void max_pool_forward_typed(const Tensor& x, const Pool2dParams& p, const Tensor& out,
                            const Tensor& indices) {
  using A = compute_t<T>;
  const Planes pl(x, out);
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  int64_t* idx = indices.data<int64_t>();
  pl.run([&](int64_t plane) {
    const T* in = src + plane * pl.in_plane();
    T* o = dst + plane * pl.out_plane();
    int64_t* oi = idx + plane * pl.out_plane();
    for (int64_t oh = 0; oh < pl.OH; ++oh) {
      const MaxWindow wh = max_window(oh, p.stride_h, p.pad_h, p.kernel_h, p.dilation_h, pl.H);
      for (int64_t ow = 0; ow < pl.OW; ++ow) {
        const MaxWindow ww = max_window(ow, p.stride_w, p.pad_w, p.kernel_w, p.dilation_w, pl.W);
        A best = -std::numeric_limits<A>::infinity();
        int64_t best_i = wh.start * pl.W + ww.start;
        for (int64_t ih = wh.start; ih < wh.end; ih += p.dilation_h) {
          for (int64_t iw = ww.start; iw < ww.end; iw += p.dilation_w) {
            const int64_t i = ih * pl.W + iw;
            const A v = load_compute(in[i]);
            if (v > best || std::isnan(v)) best = v, best_i = i;
          }
        }
        o[oh * pl.OW + ow] = store_compute<T>(best);
        oi[oh * pl.OW + ow] = best_i;
      }
    }
  });
}

// A gradient plane to accumulate into: dx itself, or for bf16/f16 a per-thread float plane
// that store() rounds into dx once.
template <class T>
struct GradPlane {
  using A = compute_t<T>;
  T* d;
  int64_t n;
  std::vector<A> buf;
  GradPlane(T* d_, int64_t n_) : d(d_), n(n_) {
    if constexpr (is_half_v<T>)
      buf.assign(static_cast<size_t>(n), A(0));
    else
      std::fill(d, d + n, T(0));
  }
  A* data() {
    if constexpr (is_half_v<T>)
      return buf.data();
    else
      return d;
  }
  void store() {
    if constexpr (is_half_v<T>)
      for (int64_t i = 0; i < n; ++i) d[i] = store_compute<T>(buf[i]);
  }
};

template <class T>
void max_pool_backward_typed(const Tensor& dout, const Tensor& indices, const Tensor& dinp) {
  const Planes pl(dinp, dout);
  const T* g = dout.data<T>();
  const int64_t* idx = indices.data<int64_t>();
  T* dx = dinp.data<T>();
  const int64_t plane_size = pl.in_plane();
  pl.run([&](int64_t plane) {
    GradPlane<T> acc(dx + plane * plane_size, plane_size);
    auto* d = acc.data();
    const T* gp = g + plane * pl.out_plane();
    const int64_t* ip = idx + plane * pl.out_plane();
    for (int64_t o = 0; o < pl.out_plane(); ++o) {
      // A window wholly in the padding has no argmax; it gets no gradient.
      if (ip[o] >= 0 && ip[o] < plane_size) d[ip[o]] += load_compute(gp[o]);
    }
    acc.store();
  });
}

// One axis of an average-pooling window clipped to the input, and the unclipped length
// (which count_include_pad divides by).
struct AvgWindow {
  int64_t start, end, padded_len;
};
AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + kernel, in + pad);
  return {std::max<int64_t>(start, 0), std::min(end, in), end - start};
}

int64_t avg_divisor(const Pool2dParams& p, const AvgWindow& wh, const AvgWindow& ww) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return wh.padded_len * ww.padded_len;
  return (wh.end - wh.start) * (ww.end - ww.start);
}

template <class T>
void avg_pool_forward_typed(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  const Planes pl(x, out);
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  pl.run([&](int64_t plane) {
    const T* in = src + plane * pl.in_plane();
    T* o = dst + plane * pl.out_plane();
    for (int64_t oh = 0; oh < pl.OH; ++oh) {
      const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kernel_h, pl.H);
      for (int64_t ow = 0; ow < pl.OW; ++ow) {
        const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kernel_w, pl.W);
        if (wh.start >= wh.end || ww.start >= ww.end) {
          o[oh * pl.OW + ow] = T{};
          continue;
        }
        double sum = 0;
        for (int64_t ih = wh.start; ih < wh.end; ++ih)
          for (int64_t iw = ww.start; iw < ww.end; ++iw)
            sum += convert_value<double>(in[ih * pl.W + iw]);
        o[oh * pl.OW + ow] = convert_value<T>(sum / double(avg_divisor(p, wh, ww)));
      }
    }
  });
}

template <class T>
void avg_pool_backward_typed(const Tensor& dout, const Pool2dParams& p, const Tensor& dinp) {
  const Planes pl(dinp, dout);
  const T* g = dout.data<T>();
  T* dx = dinp.data<T>();
  using A = compute_t<T>;
  pl.run([&](int64_t plane) {
    GradPlane<T> acc(dx + plane * pl.in_plane(), pl.in_plane());
    A* d = acc.data();
    const T* gp = g + plane * pl.out_plane();
    for (int64_t oh = 0; oh < pl.OH; ++oh) {
      const AvgWindow wh = avg_window(oh, p.stride_h, p.pad_h, p.kernel_h, pl.H);
      for (int64_t ow = 0; ow < pl.OW; ++ow) {
        const AvgWindow ww = avg_window(ow, p.stride_w, p.pad_w, p.kernel_w, pl.W);
        if (wh.start >= wh.end || ww.start >= ww.end) continue;
        const A share = static_cast<A>(convert_value<double>(gp[oh * pl.OW + ow]) /
                                       double(avg_divisor(p, wh, ww)));
        for (int64_t ih = wh.start; ih < wh.end; ++ih)
          for (int64_t iw = ww.start; iw < ww.end; ++iw) d[ih * pl.W + iw] += share;
      }
    }
    acc.store();
  });
}

// Adaptive bin i of `out` over `in`: [floor(i * in / out), ceil((i + 1) * in / out)).
struct Bin {
  int64_t start, end;
};
Bin adaptive_bin(int64_t i, int64_t in, int64_t out) {
  return {i * in / out, ((i + 1) * in + out - 1) / out};
}

template <class T>
void adaptive_avg_forward_typed(const Tensor& x, const Tensor& out) {
  const Planes pl(x, out);
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  pl.run([&](int64_t plane) {
    const T* in = src + plane * pl.in_plane();
    T* o = dst + plane * pl.out_plane();
    for (int64_t oh = 0; oh < pl.OH; ++oh) {
      const Bin bh = adaptive_bin(oh, pl.H, pl.OH);
      for (int64_t ow = 0; ow < pl.OW; ++ow) {
        const Bin bw = adaptive_bin(ow, pl.W, pl.OW);
        double sum = 0;
        for (int64_t ih = bh.start; ih < bh.end; ++ih)
          for (int64_t iw = bw.start; iw < bw.end; ++iw)
            sum += convert_value<double>(in[ih * pl.W + iw]);
        o[oh * pl.OW + ow] =
            convert_value<T>(sum / double((bh.end - bh.start) * (bw.end - bw.start)));
      }
    }
  });
}

template <class T>
void adaptive_avg_backward_typed(const Tensor& dout, const Tensor& dinp) {
  const Planes pl(dinp, dout);
  const T* g = dout.data<T>();
  T* dx = dinp.data<T>();
  using A = compute_t<T>;
  pl.run([&](int64_t plane) {
    GradPlane<T> acc(dx + plane * pl.in_plane(), pl.in_plane());
    A* d = acc.data();
    const T* gp = g + plane * pl.out_plane();
    for (int64_t oh = 0; oh < pl.OH; ++oh) {
      const Bin bh = adaptive_bin(oh, pl.H, pl.OH);
      for (int64_t ow = 0; ow < pl.OW; ++ow) {
        const Bin bw = adaptive_bin(ow, pl.W, pl.OW);
        const A share = static_cast<A>(convert_value<double>(gp[oh * pl.OW + ow]) /
                                       double((bh.end - bh.start) * (bw.end - bw.start)));
        for (int64_t ih = bh.start; ih < bh.end; ++ih)
          for (int64_t iw = bw.start; iw < bw.end; ++iw) d[ih * pl.W + iw] += share;
      }
    }
    acc.store();
  });
}

void max_pool2d_forward_cpu(const Tensor& x, const Pool2dParams& p, const Tensor& out,
                            const Tensor& indices) {
  dispatch_float_or_half(x.dtype(), "max_pool2d",
                         [&]<class T>() { max_pool_forward_typed<T>(x, p, out, indices); });
}
void max_pool2d_backward_cpu(const Tensor& dout, const Tensor& indices, const Tensor& dinp) {
  dispatch_float_or_half(dout.dtype(), "max_pool2d_backward",
                         [&]<class T>() { max_pool_backward_typed<T>(dout, indices, dinp); });
}
void avg_pool2d_forward_cpu(const Tensor& x, const Pool2dParams& p, const Tensor& out) {
  dispatch_float_or_half(x.dtype(), "avg_pool2d",
                         [&]<class T>() { avg_pool_forward_typed<T>(x, p, out); });
}
void avg_pool2d_backward_cpu(const Tensor& dout, const Pool2dParams& p, const Tensor& dinp) {
  dispatch_float_or_half(dout.dtype(), "avg_pool2d_backward",
                         [&]<class T>() { avg_pool_backward_typed<T>(dout, p, dinp); });
}
void adaptive_avg_pool2d_forward_cpu(const Tensor& x, const Tensor& out) {
  dispatch_float_or_half(x.dtype(), "adaptive_avg_pool2d",
                         [&]<class T>() { adaptive_avg_forward_typed<T>(x, out); });
}
void adaptive_avg_pool2d_backward_cpu(const Tensor& dout, const Tensor& dinp) {
  dispatch_float_or_half(dout.dtype(), "adaptive_avg_pool2d_backward",
                         [&]<class T>() { adaptive_avg_backward_typed<T>(dout, dinp); });
}

}  // namespace
}  // namespace iris::cpu

namespace iris::kernels {
IRIS_REGISTER_KERNEL(max_pool2d_forward, CPU, cpu::max_pool2d_forward_cpu);
IRIS_REGISTER_KERNEL(max_pool2d_backward, CPU, cpu::max_pool2d_backward_cpu);
IRIS_REGISTER_KERNEL(avg_pool2d_forward, CPU, cpu::avg_pool2d_forward_cpu);
IRIS_REGISTER_KERNEL(avg_pool2d_backward, CPU, cpu::avg_pool2d_backward_cpu);
IRIS_REGISTER_KERNEL(adaptive_avg_pool2d_forward, CPU, cpu::adaptive_avg_pool2d_forward_cpu);
IRIS_REGISTER_KERNEL(adaptive_avg_pool2d_backward, CPU, cpu::adaptive_avg_pool2d_backward_cpu);
}  // namespace iris::kernels
