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
// bf16/f16 logits compute in fp32 (statistics, lse as a float32 tensor) and round once at
// each 16-bit store (loss, dlogits).
#include <cmath>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"  // first: it brings in cuda_compat.h

#include "kernels/cuda/online_softmax.cuh"
#include "kernels/elementwise.h"
#include "kernels/softmax.h"

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
using ops::compute_t;
using ops::load_compute;
using ops::store_compute;
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

// Writes the loss and lse of sample k = n * S + s from its statistics (in C = compute_t<T>).
template <class T, class C>
__device__ void finish_sample(const Params& p, const Stats<C>& a, const T* x, int64_t x_stride,
                              int64_t t, int64_t k, T* loss, C* lse_out,
                              unsigned long long* error) {
  const double lse = static_cast<double>(a.m) + std::log(static_cast<double>(a.s));
  lse_out[k] = static_cast<C>(lse);
  // One store site: the 16-bit rounding is inlined once (fewer registers, no spills).
  double l = 0;  // an ignored sample, or a bad target (recorded)
  if (t != p.ignore_index && (t < 0 || t >= p.C)) {
    atomicMin(error, static_cast<unsigned long long>(k));
  } else if (t != p.ignore_index) {
    const double nll = lse - static_cast<double>(load_compute(x[t * x_stride]));
    const double nc = static_cast<double>(p.C);
    l = p.smoothing == 0 ? nll
                         : (1 - p.smoothing) * nll +
                               p.smoothing / nc * (nc * lse - static_cast<double>(a.xs));
  }
  loss[k] = convert_value<T>(l);
}

template <class T>
__device__ __forceinline__ Stats<T> warp_allreduce(Stats<T> a) {
  for (int o = 16; o > 0; o >>= 1) a = stats_combine(a, __shfl_xor_sync(kFullMask, a, o));
  return a;
}

// S == 1, a warp per sample.
template <class T, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_warp_kernel(Params p, const T* x, const int64_t* target, T* loss, C* lse,
                           unsigned long long* error) {
  const int lane = threadIdx.x & 31;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * Tr::kWarps + threadIdx.x / 32; n < p.N;
       n += static_cast<int64_t>(gridDim.x) * Tr::kWarps) {
    const T* xr = x + n * p.C;
    Stats<C> a = stats_init<C>();
    for (int64_t c = lane; c < p.C; c += 32) stats_add(a, load_compute(xr[c]));
    a = warp_allreduce(a);
    if (lane == 0) finish_sample(p, a, xr, 1, target[n], n, loss, lse, error);
  }
}

// S == 1, a block per sample.
template <class T, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_block_kernel(Params p, const T* x, const int64_t* target, T* loss, C* lse,
                            unsigned long long* error) {
  IRIS_SHARED(Stats<C>, partial, [Tr::kWarps]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  for (int64_t n = blockIdx.x; n < p.N; n += gridDim.x) {  // uniform in the block
    const T* xr = x + n * p.C;
    Stats<C> a = stats_init<C>();
    for (int64_t c = threadIdx.x; c < p.C; c += Tr::kThreads) stats_add(a, load_compute(xr[c]));
    a = warp_allreduce(a);
    if (lane == 0) partial[warp] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
      Stats<C> v = partial[0];
      for (int w = 1; w < Tr::kWarps; ++w) {
        const Stats<C> u = partial[w];
        v = stats_combine(v, u);
      }
      finish_sample(p, v, xr, 1, target[n], n, loss, lse, error);
    }
    __syncthreads();
  }
}

// S > 1: threadIdx.x is the position s, threadIdx.y splits the classes.
template <class T, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_forward_cols_kernel(Params p, const T* x, const int64_t* target, T* loss, C* lse,
                           unsigned long long* error) {
  IRIS_SHARED(Stats<C>, partial, [Tr::kColY][Tr::kColX]);
  for (int64_t n = blockIdx.y; n < p.N; n += gridDim.y)
    for (int64_t s0 = static_cast<int64_t>(blockIdx.x) * Tr::kColX; s0 < p.S;
         s0 += static_cast<int64_t>(gridDim.x) * Tr::kColX) {
      const int64_t s = s0 + threadIdx.x;
      const bool live = s < p.S;
      const T* xs = x + n * p.C * p.S + s;
      Stats<C> a = stats_init<C>();
      if (live)
        for (int64_t c = threadIdx.y; c < p.C; c += Tr::kColY)
          stats_add(a, load_compute(xs[c * p.S]));
      partial[threadIdx.y][threadIdx.x] = a;
      __syncthreads();
      if (threadIdx.y == 0 && live) {
        Stats<C> v = partial[0][threadIdx.x];
        for (int j = 1; j < Tr::kColY; ++j) {
          const Stats<C> u = partial[j][threadIdx.x];
          v = stats_combine(v, u);
        }
        const int64_t k = n * p.S + s;
        finish_sample(p, v, xs, p.S, target[k], k, loss, lse, error);
      }
      __syncthreads();
    }
}

// dx[n, c, s] = g * (exp(x - lse) - ls / C) - g * (1 - ls) * [c == t]; 0 where ignored.
template <class T, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kThreads)
    ce_backward_kernel(Params p, const T* x, const int64_t* target, const C* lse, const T* dloss,
                       int64_t gs0, int64_t gs1, T* dx, unsigned long long* error) {
  const int64_t total = p.N * p.C * p.S;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = i % p.S, c = (i / p.S) % p.C, n = i / (p.S * p.C);
    const int64_t k = n * p.S + s;
    const int64_t t = target[k];
    if (t == p.ignore_index) {
      dx[i] = store_compute<T>(C(0));
      continue;
    }
    if (t < 0 || t >= p.C) {
      if (c == 0) atomicMin(error, static_cast<unsigned long long>(k));
      dx[i] = store_compute<T>(C(0));
      continue;
    }
    const double g = static_cast<double>(load_compute(dloss[n * gs0 + s * gs1]));
    const C a = static_cast<C>(g);
    const C b = static_cast<C>(g * p.smoothing / static_cast<double>(p.C));
    C v = a * std::exp(load_compute(x[i]) - lse[k]) - b;
    if (c == t) v -= static_cast<C>(g * (1 - p.smoothing));
    dx[i] = store_compute<T>(v);
  }
}

unsigned clamp_grid(int64_t n, int64_t most) {
  return static_cast<unsigned>(n < 1 ? 1 : (n < most ? n : most));
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

// lse is float32 for 16-bit logits, the logits' dtype otherwise.
void check_lse(const char* op, const Tensor& logits, const Tensor& lse) {
  const DType d = logits.dtype();
  const DType want = d == DType::bf16 || d == DType::f16 ? DType::f32 : d;
  IRIS_CHECK(lse.dtype() == want, op, ": lse of ", logits.desc(), " is ", dtype_name(want),
             ", got ", lse.desc());
}

void cross_entropy_forward_cuda(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                                double label_smoothing, const Tensor& loss, const Tensor& lse) {
  const Params p{logits.size(0), logits.size(1), logits.size(2), ignore_index, label_smoothing};
  IRIS_CHECK(p.C > 0 || p.N * p.S == 0, "cross_entropy: no classes in logits ", logits.desc());
  for (const Tensor* t : {&logits, &target, &loss, &lse}) check_dense("cross_entropy", *t);
  if (p.N == 0 || p.S == 0) return;
  const Tensor slot = error_slot(logits.device());
  unsigned long long* err = static_cast<unsigned long long*>(slot.raw_data());
  check_lse("cross_entropy", logits, lse);
  ops::dispatch_float_or_half(logits.dtype(), "cross_entropy", [&]<class T>() {
    using C = compute_t<T>;
    const T* px = static_cast<const T*>(logits.raw_data());
    const int64_t* pt = static_cast<const int64_t*>(target.raw_data());
    T* pl = static_cast<T*>(loss.raw_data());
    C* pe = static_cast<C*>(lse.raw_data());
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
  check_lse("cross_entropy_backward", logits, lse);
  ops::dispatch_float_or_half(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    using C = compute_t<T>;
    IRIS_LAUNCH(ce_backward_kernel<T>,
                dim3(clamp_grid((total + Tr::kThreads - 1) / Tr::kThreads, Tr::kMaxElemBlocks)),
                dim3(Tr::kThreads), 0, nullptr, p, static_cast<const T*>(logits.raw_data()),
                static_cast<const int64_t*>(target.raw_data()),
                static_cast<const C*>(lse.raw_data()), static_cast<const T*>(dloss.raw_data()),
                dloss.stride(0), dloss.stride(1), static_cast<T*>(dlogits.raw_data()), err);
  });
  check_error_slot(slot, p, target);
}

}  // namespace

IRIS_REGISTER_KERNEL(cross_entropy_forward, CUDA, cross_entropy_forward_cuda);
IRIS_REGISTER_KERNEL(cross_entropy_backward, CUDA, cross_entropy_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS

#undef IRIS_DEV
