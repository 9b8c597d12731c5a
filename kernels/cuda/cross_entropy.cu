// CUDA cross-entropy fused with log-softmax over logits [N, C, S] (dense).
// Forward keeps only the per-sample log-sum-exp:
//   S == 1: a warp per sample when C <= kWarpRowMax (8 samples per block), a block
//           per sample otherwise; one pass gives the running max, the sum of
//           exponentials (online softmax) and the logit sum (label smoothing).
//   S > 1:  a 32 x 8 block covers 32 adjacent positions s (coalesced) and splits C
//           in 8; partials are combined through shared memory in a fixed order.
// Backward is elementwise (softmax = exp(x - lse) minus the smoothed one-hot), a
// grid-stride kernel over every logit. A target outside [0, C) that is not
// ignore_index is recorded on the device (the lowest sample index, atomicMin on
// an integer) and thrown on the host after the launch, naming the index.
#include <cmath>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/emu/cuda_compat.h"
#include "kernels/softmax.h"
#include "kernels/cuda/online_softmax.cuh"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct CrossEntropyTraits {
  static constexpr int kThreads = 256;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int64_t kWarpRowMax = 1024;  // more classes: a block per sample
  static constexpr int kColX = 32;              // S > 1: adjacent positions per block
  static constexpr int kColY = kThreads / kColX;  // ... and the splits of C
  static constexpr int64_t kMaxGrid = 65535;
  static constexpr int64_t kMaxElemBlocks = 4096;  // backward grid-stride beyond this
  static_assert(kThreads % 32 == 0 && kColX == 32 && kColX * kColY == kThreads);
};
using Tr = CrossEntropyTraits;
// "No bad target" in the error slot (an int64 the kernels atomicMin into).
constexpr long long kNoError = 9000000000000000000LL;

// Running max, sum of exp(x - max), and sum of x.
template <class T>
struct Stats {
  T m;
  T s;
  T xs;
};

template <class T>
IRIS_DEV Stats<T> stats_init() {
  return Stats<T>{neg_inf<T>(), T(0), T(0)};
}

template <class T>
IRIS_DEV void stats_add(Stats<T>& a, T x) {
  MaxSum<T> ms{a.m, a.s};
  online_add(ms, x);
  a = Stats<T>{ms.m, ms.s, a.xs + x};
}

template <class T>
IRIS_DEV Stats<T> stats_combine(Stats<T> a, Stats<T> b) {
  const MaxSum<T> ms = online_combine(MaxSum<T>{a.m, a.s}, MaxSum<T>{b.m, b.s});
  return Stats<T>{ms.m, ms.s, a.xs + b.xs};
}

struct Params {
  int64_t N, C, S;
  int64_t ignore_index;
  double smoothing;
};

// Writes the loss and lse of sample k = n * S + s from its statistics.
template <class T>
__device__ void finish_sample(const Params& p, const Stats<T>& a, const T* x, int64_t x_stride,
                              int64_t t, int64_t k, T* loss, T* lse_out,
                              unsigned long long* error) {
  const double lse = static_cast<double>(a.m) + std::log(static_cast<double>(a.s));
  lse_out[k] = static_cast<T>(lse);
  if (t == p.ignore_index) {
    loss[k] = T(0);
    return;
  }
  if (t < 0 || t >= p.C) {
    atomicMin(error, static_cast<unsigned long long>(k));
    loss[k] = T(0);
    return;
  }
  const double nll = lse - static_cast<double>(x[t * x_stride]);
  if (p.smoothing == 0) {
    loss[k] = static_cast<T>(nll);
    return;
  }
  const double C = static_cast<double>(p.C);
  loss[k] = static_cast<T>((1 - p.smoothing) * nll +
                           p.smoothing / C * (C * lse - static_cast<double>(a.xs)));
}

template <class T>
__device__ __forceinline__ Stats<T> warp_allreduce(Stats<T> a) {
  for (int o = 16; o > 0; o >>= 1) a = stats_combine(a, __shfl_xor_sync(kFullMask, a, o));
  return a;
}

// S == 1, a warp per sample.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_warp_kernel(Params p, const T* x, const int64_t* target, T* loss, T* lse,
                           unsigned long long* error) {
  const int lane = threadIdx.x & 31;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * Tr::kWarps + threadIdx.x / 32; n < p.N;
       n += static_cast<int64_t>(gridDim.x) * Tr::kWarps) {
    const T* xr = x + n * p.C;
    Stats<T> a = stats_init<T>();
    for (int64_t c = lane; c < p.C; c += 32) stats_add(a, xr[c]);
    a = warp_allreduce(a);
    if (lane == 0) finish_sample(p, a, xr, 1, target[n], n, loss, lse, error);
  }
}

// S == 1, a block per sample.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_block_kernel(Params p, const T* x, const int64_t* target, T* loss, T* lse,
                            unsigned long long* error) {
  IRIS_SHARED(Stats<T>, partial, [Tr::kWarps]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  for (int64_t n = blockIdx.x; n < p.N; n += gridDim.x) {  // uniform in the block
    const T* xr = x + n * p.C;
    Stats<T> a = stats_init<T>();
    for (int64_t c = threadIdx.x; c < p.C; c += Tr::kThreads) stats_add(a, xr[c]);
    a = warp_allreduce(a);
    if (lane == 0) partial[warp] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
      Stats<T> v = partial[0];
      for (int w = 1; w < Tr::kWarps; ++w) {
        const Stats<T> u = partial[w];
        v = stats_combine(v, u);
      }
      finish_sample(p, v, xr, 1, target[n], n, loss, lse, error);
    }
    __syncthreads();
  }
}

// S > 1: threadIdx.x is the position s, threadIdx.y splits the classes.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_cols_kernel(Params p, const T* x, const int64_t* target, T* loss, T* lse,
                           unsigned long long* error) {
  IRIS_SHARED(Stats<T>, partial, [Tr::kColY][Tr::kColX]);
  for (int64_t n = blockIdx.y; n < p.N; n += gridDim.y)
    for (int64_t s0 = static_cast<int64_t>(blockIdx.x) * Tr::kColX; s0 < p.S;
         s0 += static_cast<int64_t>(gridDim.x) * Tr::kColX) {
      const int64_t s = s0 + threadIdx.x;
      const bool live = s < p.S;
      const T* xs = x + n * p.C * p.S + s;
      Stats<T> a = stats_init<T>();
      if (live)
        for (int64_t c = threadIdx.y; c < p.C; c += Tr::kColY) stats_add(a, xs[c * p.S]);
      partial[threadIdx.y][threadIdx.x] = a;
      __syncthreads();
      if (threadIdx.y == 0 && live) {
        Stats<T> v = partial[0][threadIdx.x];
        for (int j = 1; j < Tr::kColY; ++j) {
          const Stats<T> u = partial[j][threadIdx.x];
          v = stats_combine(v, u);
        }
        const int64_t k = n * p.S + s;
        finish_sample(p, v, xs, p.S, target[k], k, loss, lse, error);
      }
      __syncthreads();
    }
}

// dx[n, c, s] = g * (exp(x - lse) - ls / C) - g * (1 - ls) * [c == t]; 0 where ignored.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_backward_kernel(Params p, const T* x, const int64_t* target, const T* lse, const T* dloss,
                       int64_t gs0, int64_t gs1, T* dx, unsigned long long* error) {
  const int64_t total = p.N * p.C * p.S;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = i % p.S, c = (i / p.S) % p.C, n = i / (p.S * p.C);
    const int64_t k = n * p.S + s;
    const int64_t t = target[k];
    if (t == p.ignore_index) {
      dx[i] = T(0);
      continue;
    }
    if (t < 0 || t >= p.C) {
      if (c == 0) atomicMin(error, static_cast<unsigned long long>(k));
      dx[i] = T(0);
      continue;
    }
    const double g = static_cast<double>(dloss[n * gs0 + s * gs1]);
    const T a = static_cast<T>(g);
    const T b = static_cast<T>(g * p.smoothing / static_cast<double>(p.C));
    T v = a * std::exp(x[i] - lse[k]) - b;
    if (c == t) v -= static_cast<T>(g * (1 - p.smoothing));
    dx[i] = v;
  }
}

unsigned clamp_grid(int64_t n, int64_t most) {
  return static_cast<unsigned>(n < 1 ? 1 : (n < most ? n : most));
}

template <class Fn>
void dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    default: IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda (float32/float64)");
  }
}

// A one-element device slot for the lowest bad sample index.
Tensor error_slot(const Device& device) {
  Tensor slot = Tensor::empty({1}, DType::i64, device);
  kernels::fill_table().get(device)(slot, static_cast<double>(kNoError));
  return slot;
}

// Throws (as the CPU backend does) when the slot names a bad target.
void check_error_slot(const Tensor& slot, const Params& p, const Tensor& target) {
  const int64_t k = slot.to_vector<int64_t>()[0];
  if (k >= kNoError) return;
  const int64_t t = target.as_strided({1}, {1}, target.offset() + k).to_vector<int64_t>()[0];
  const int64_t n = k / p.S, s = k % p.S;
  IRIS_FAIL("cross_entropy: target ", t, " is out of bounds for ", p.C, " classes (sample ", n,
            p.S > 1 ? ", position " : "", p.S > 1 ? std::to_string(s) : "", ")");
}

void check_dense(const char* op, const Tensor& t) {
  IRIS_CHECK(t.is_contiguous(), op, ": expected a dense tensor, got ", t.desc());
}

void cross_entropy_forward_cuda(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                                double label_smoothing, const Tensor& loss, const Tensor& lse) {
  const Params p{logits.size(0), logits.size(1), logits.size(2), ignore_index, label_smoothing};
  IRIS_CHECK(p.C > 0 || p.N * p.S == 0, "cross_entropy: no classes in logits ", logits.desc());
  for (const Tensor* t : {&logits, &target, &loss, &lse}) check_dense("cross_entropy", *t);
  if (p.N == 0 || p.S == 0) return;
  const Tensor slot = error_slot(logits.device());
  unsigned long long* err = static_cast<unsigned long long*>(slot.raw_data());
  dispatch_float(logits.dtype(), "cross_entropy", [&]<class T>() {
    const T* px = static_cast<const T*>(logits.raw_data());
    const int64_t* pt = static_cast<const int64_t*>(target.raw_data());
    T* pl = static_cast<T*>(loss.raw_data());
    T* pe = static_cast<T*>(lse.raw_data());
    if (p.S > 1) {
      const dim3 grid(clamp_grid((p.S + Tr::kColX - 1) / Tr::kColX, Tr::kMaxGrid),
                      clamp_grid(p.N, Tr::kMaxGrid));
      IRIS_LAUNCH(ce_forward_cols_kernel<T>, grid, dim3(Tr::kColX, Tr::kColY), 0, nullptr, p, px,
                  pt, pl, pe, err);
    } else if (p.C <= Tr::kWarpRowMax) {
      IRIS_LAUNCH(ce_forward_warp_kernel<T>,
                  dim3(clamp_grid((p.N + Tr::kWarps - 1) / Tr::kWarps, Tr::kMaxGrid)),
                  dim3(Tr::kThreads), 0, nullptr, p, px, pt, pl, pe, err);
    } else {
      IRIS_LAUNCH(ce_forward_block_kernel<T>, dim3(clamp_grid(p.N, Tr::kMaxGrid)),
                  dim3(Tr::kThreads), 0, nullptr, p, px, pt, pl, pe, err);
    }
  });
  check_error_slot(slot, p, target);
}

void cross_entropy_backward_cuda(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                 const Tensor& dloss, int64_t ignore_index, double label_smoothing,
                                 const Tensor& dlogits) {
  const Params p{logits.size(0), logits.size(1), logits.size(2), ignore_index, label_smoothing};
  for (const Tensor* t : {&logits, &target, &lse, &dlogits})
    check_dense("cross_entropy_backward", *t);
  const int64_t total = p.N * p.C * p.S;
  if (total == 0) return;
  const Tensor slot = error_slot(logits.device());
  unsigned long long* err = static_cast<unsigned long long*>(slot.raw_data());
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    IRIS_LAUNCH(ce_backward_kernel<T>,
                dim3(clamp_grid((total + Tr::kThreads - 1) / Tr::kThreads, Tr::kMaxElemBlocks)),
                dim3(Tr::kThreads), 0, nullptr, p, static_cast<const T*>(logits.raw_data()),
                static_cast<const int64_t*>(target.raw_data()),
                static_cast<const T*>(lse.raw_data()), static_cast<const T*>(dloss.raw_data()),
                dloss.stride(0), dloss.stride(1), static_cast<T*>(dlogits.raw_data()), err);
  });
  check_error_slot(slot, p, target);
}

}  // namespace

IRIS_REGISTER_KERNEL(cross_entropy_forward, CUDA, cross_entropy_forward_cuda);
IRIS_REGISTER_KERNEL(cross_entropy_backward, CUDA, cross_entropy_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS

#undef IRIS_DEV
