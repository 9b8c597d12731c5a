// CUDA reductions (sum, mean, max, min, argmax, argmin, var) over any set of dims,
// and the inclusive scan (cumsum). The input is viewed as [outer, R, inner] with
// R the reduced extent:
//   inner == 1: rows; a warp per row when R <= kWarpRowMax (8 rows per block),
//               a block per row otherwise (warp shuffles, then the warps' partials
//               through shared memory);
//   inner > 1:  columns; a block of 32 x 8 threads covers 32 adjacent columns
//               (coalesced) and splits R in 8, combined through shared memory.
// When that leaves the GPU idle (a few very long rows, or few column blocks over a
// long R), R is also split in chunks across blocks: each writes a partial state to
// scratch and a second kernel folds the partials in chunk order (two stages).
// Reduced dims that are not one contiguous block of a dense tensor are permuted
// last and densified first (as the CPU backend does). Every combine happens in a
// fixed order (no atomics), so results are deterministic. Accumulation is in the
// element type for floating point (fp32 for float), fp32 for bf16/f16 (one rounding at
// the store) and int64 for integers.
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/cuda/ops_launch.cuh"  // first: it brings in cuda_compat.h

#include "kernels/cuda/online_softmax.cuh"
#include "kernels/reduce.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

using kernels::ReduceOp;
using ops::compute_t;
using ops::load_compute;

struct ReduceTraits {
  static constexpr int kThreads = 256;  // every kernel here
  static constexpr int kWarps = kThreads / 32;
  static constexpr int64_t kWarpRowMax = 1024;  // longer rows get a block each
  static constexpr int kColX = 32;              // column kernel: adjacent columns per block
  static constexpr int kColY = kThreads / kColX;  // ... and the splits of R
  static constexpr int64_t kMaxGrid = 65535;    // grid-stride beyond this (x and y)
  // Few long rows (fewer than kSplitRowsMax rows of at least kSplitMin elements)
  // are split in chunks of kSplitChunk: a block per chunk writes its partial state,
  // then a block per row combines the partials in chunk order (deterministic).
  static constexpr int64_t kSplitRowsMax = 64;
  static constexpr int64_t kSplitMin = 65536;
  static constexpr int64_t kSplitChunk = 16384;
  static_assert(kSplitChunk % kThreads == 0 && kSplitMin >= 2 * kSplitChunk);
  // Columns likewise: fewer than kColSplitBlocks column blocks over R >= kColSplitMin
  // rows get blockIdx.z chunks of R (at least kColSplitRows rows each, at most
  // kColSplitMaxChunks of them), folded in chunk order by a second kernel.
  static constexpr int64_t kColSplitBlocks = 256;
  static constexpr int64_t kColSplitMin = 4096;
  static constexpr int64_t kColSplitRows = 512;
  static constexpr int64_t kColSplitMaxChunks = 64;
  static_assert(kColSplitMin >= 2 * kColSplitRows && kColSplitMaxChunks <= 65535);
  static_assert(kThreads % 32 == 0 && kWarps <= 32, "the warps' partials fit one warp");
  static_assert(kColX == 32 && kColX * kColY == kThreads, "a column block is one warp wide");
};
using Tr = ReduceTraits;

// Accumulators by storage type: the compute type for the floats, int64 / double otherwise.
template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, int64_t>;
template <class T>
using VarAcc = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, double>;

template <class T>
IRIS_DEV bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

IRIS_DEV double quiet_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

struct Params {
  ReduceOp op;
  int64_t R;
  int64_t correction;
};

// sum and mean.
template <class T>
struct SumOp {
  using State = Acc<T>;
  IRIS_DEV static State init() { return State(0); }
  IRIS_DEV static void add(State& s, T x, int64_t) { s += static_cast<State>(load_compute(x)); }
  IRIS_DEV static State combine(State a, State b) { return a + b; }
  IRIS_DEV static void store(void* out, int64_t k, State s, const Params& p) {
    T* o = static_cast<T*>(out);
    if (p.op == ReduceOp::sum)
      o[k] = convert_value<T>(s);
    else if constexpr (std::is_floating_point_v<State>)
      o[k] = convert_value<T>(s / static_cast<State>(p.R));
    else
      o[k] = static_cast<T>(static_cast<double>(s) / static_cast<double>(p.R));
  }
};

// max, min, argmax, argmin: the value and its index in the reduced dim. NaN is the
// largest value for max and the result of min; ties go to the lower index.
template <class T, bool kMax>
struct ArgOp {
  using V = compute_t<T>;
  struct State {
    int64_t i;  // -1: no element yet
    V v;
  };
  IRIS_DEV static State init() { return State{-1, V(0)}; }
  IRIS_DEV static bool better(V b, V a) {  // b strictly preferred over a
    if (is_nan(a)) return false;
    if (is_nan(b)) return true;
    return kMax ? b > a : b < a;
  }
  IRIS_DEV static State combine(State a, State b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    if (better(b.v, a.v)) return b;
    if (better(a.v, b.v)) return a;
    return b.i < a.i ? b : a;
  }
  IRIS_DEV static void add(State& s, T x, int64_t i) { s = combine(s, State{i, load_compute(x)}); }
  IRIS_DEV static void store(void* out, int64_t k, State s, const Params& p) {
    if (p.op == ReduceOp::argmax || p.op == ReduceOp::argmin)
      static_cast<int64_t*>(out)[k] = s.i;
    else
      static_cast<T*>(out)[k] = convert_value<T>(s.v);
  }
};

// var: Welford per thread, Chan et al. to combine.
template <class T>
struct VarOp {
  using A = VarAcc<T>;
  struct State {
    A mean;
    A m2;
    int64_t n;
  };
  IRIS_DEV static State init() { return State{A(0), A(0), 0}; }
  IRIS_DEV static void add(State& s, T x, int64_t) {
    const A v = static_cast<A>(load_compute(x));
    s.n += 1;
    const A d = v - s.mean;
    s.mean += d / static_cast<A>(s.n);
    s.m2 += d * (v - s.mean);
  }
  IRIS_DEV static State combine(State a, State b) {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const int64_t n = a.n + b.n;
    const A d = b.mean - a.mean;
    const A fb = static_cast<A>(b.n) / static_cast<A>(n);
    return State{a.mean + d * fb, a.m2 + b.m2 + d * d * static_cast<A>(a.n) * fb, n};
  }
  IRIS_DEV static void store(void* out, int64_t k, State s, const Params& p) {
    const int64_t denom = s.n - p.correction;
    static_cast<T*>(out)[k] = convert_value<T>(
        denom > 0 ? static_cast<double>(s.m2) / static_cast<double>(denom) : quiet_nan());
  }
};

template <class Op, class S>
__device__ __forceinline__ S warp_reduce(S s) {
  for (int o = 16; o > 0; o >>= 1) s = Op::combine(s, __shfl_xor_sync(kFullMask, s, o));
  return s;
}

// A warp per row of x [rows, R].
template <class T, class Op>
__global__ void __launch_bounds__(Tr::kThreads)
    reduce_rows_warp_kernel(int64_t rows, int64_t R, const T* x, void* out, Params p) {
  const int lane = threadIdx.x & 31;
  const int64_t step = static_cast<int64_t>(gridDim.x) * Tr::kWarps;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * Tr::kWarps + threadIdx.x / 32; row < rows;
       row += step) {
    const T* xr = x + row * R;
    auto s = Op::init();
    for (int64_t i = lane; i < R; i += 32) Op::add(s, xr[i], i);
    s = warp_reduce<Op>(s);
    if (lane == 0) Op::store(out, row, s, p);
  }
}

// A block per row of x [rows, R].
template <class T, class Op>
__global__ void __launch_bounds__(Tr::kThreads)
    reduce_rows_block_kernel(int64_t rows, int64_t R, const T* x, void* out, Params p) {
  using State = typename Op::State;
  IRIS_SHARED(State, partial, [Tr::kWarps]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {  // uniform in the block
    const T* xr = x + row * R;
    State s = Op::init();
    for (int64_t i = threadIdx.x; i < R; i += Tr::kThreads) Op::add(s, xr[i], i);
    s = warp_reduce<Op>(s);
    if (lane == 0) partial[warp] = s;
    __syncthreads();
    if (warp == 0) {
      State v = Op::init();
      if (lane < Tr::kWarps) v = partial[lane];
      v = warp_reduce<Op>(v);
      if (lane == 0) Op::store(out, row, v, p);
    }
    __syncthreads();
  }
}

// x [outer, R, inner], inner > 1: out[o, k] over r. threadIdx.x is the column.
// blockIdx.z takes rows [z * chunk_len, (z + 1) * chunk_len) of R; with kPartial
// the result is chunk z's partial state (partials[z][o * inner + k]), folded by
// reduce_col_partials_kernel.
// The minimum of 4 blocks per SM caps registers at 64; without it ptxas aims at 32 for the
// float sum and spills (the CI build fails on any spill).
template <class T, class Op, bool kPartial>
__global__ void __launch_bounds__(Tr::kThreads, 4)
    reduce_cols_kernel(int64_t outer, int64_t R, int64_t inner, int64_t chunk_len, const T* x,
                       void* out, typename Op::State* partials, Params p) {
  using State = typename Op::State;
  IRIS_SHARED(State, partial, [Tr::kColY][Tr::kColX]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t r0 = static_cast<int64_t>(blockIdx.z) * chunk_len;
  const int64_t r1 = r0 + chunk_len < R ? r0 + chunk_len : R;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y)
    for (int64_t k0 = static_cast<int64_t>(blockIdx.x) * Tr::kColX; k0 < inner;
         k0 += static_cast<int64_t>(gridDim.x) * Tr::kColX) {
      const int64_t k = k0 + tx;
      State s = Op::init();
      if (k < inner)
        for (int64_t r = r0 + ty; r < r1; r += Tr::kColY)
          Op::add(s, x[(o * R + r) * inner + k], r);
      partial[ty][tx] = s;
      __syncthreads();
      if (ty == 0 && k < inner) {
        State v = partial[0][tx];
        for (int j = 1; j < Tr::kColY; ++j) {
          const State w = partial[j][tx];
          v = Op::combine(v, w);
        }
        if constexpr (kPartial)
          partials[static_cast<int64_t>(blockIdx.z) * outer * inner + o * inner + k] = v;
        else
          Op::store(out, o * inner + k, v, p);
      }
      __syncthreads();
    }
}

// Column split stage 2: a thread per output folds the chunks' partials in order
// (adjacent threads on adjacent outputs: coalesced).
template <class Op>
__global__ void __launch_bounds__(Tr::kThreads)
    reduce_col_partials_kernel(int64_t count, int64_t chunks, const typename Op::State* partials,
                               void* out, Params p) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < count;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    typename Op::State s = Op::init();
    for (int64_t j = 0; j < chunks; ++j) s = Op::combine(s, partials[j * count + c]);
    Op::store(out, c, s, p);
  }
}

// The block-wide combination of s (all threads call it; thread 0 gets the result).
template <class Op, class State>
__device__ __forceinline__ State block_reduce(State s) {
  IRIS_SHARED(State, partial, [Tr::kWarps]);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  s = warp_reduce<Op>(s);
  if (lane == 0) partial[warp] = s;
  __syncthreads();
  State v = Op::init();
  if (warp == 0) {
    if (lane < Tr::kWarps) v = partial[lane];
    v = warp_reduce<Op>(v);
  }
  __syncthreads();  // partial is free again
  return v;
}

// Split stage 1: block b covers chunk b % chunks of row b / chunks of x [rows, R].
template <class T, class Op>
__global__ void __launch_bounds__(Tr::kThreads)
    reduce_chunks_kernel(int64_t rows, int64_t R, int64_t chunks, const T* x,
                         typename Op::State* partials) {
  for (int64_t b = blockIdx.x; b < rows * chunks; b += gridDim.x) {  // uniform in the block
    const int64_t row = b / chunks, begin = (b % chunks) * Tr::kSplitChunk;
    const int64_t end = begin + Tr::kSplitChunk < R ? begin + Tr::kSplitChunk : R;
    const T* xr = x + row * R;
    typename Op::State s = Op::init();
    for (int64_t i = begin + threadIdx.x; i < end; i += Tr::kThreads) Op::add(s, xr[i], i);
    s = block_reduce<Op>(s);
    if (threadIdx.x == 0) partials[b] = s;
  }
}

// Split stage 2: a block per row folds its chunks' partials (thread j takes chunks
// j, j + kThreads, ... in order, then the fixed shuffle tree).
template <class Op>
__global__ void __launch_bounds__(Tr::kThreads)
    reduce_partials_kernel(int64_t rows, int64_t chunks, const typename Op::State* partials,
                           void* out, Params p) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    typename Op::State s = Op::init();
    for (int64_t j = threadIdx.x; j < chunks; j += Tr::kThreads)
      s = Op::combine(s, partials[row * chunks + j]);
    s = block_reduce<Op>(s);
    if (threadIdx.x == 0) Op::store(out, row, s, p);
  }
}

unsigned clamp_grid(int64_t n) {
  return static_cast<unsigned>(n < 1 ? 1 : (n < Tr::kMaxGrid ? n : Tr::kMaxGrid));
}

template <class T, class Op>
void launch_reduce(const Device& device, int64_t outer, int64_t R, int64_t inner, const T* x,
                   void* out, const Params& p) {
  if (inner > 1) {
    using State = typename Op::State;
    const int64_t blocks =
        ((inner + Tr::kColX - 1) / Tr::kColX) * (outer < Tr::kMaxGrid ? outer : Tr::kMaxGrid);
    const dim3 block(Tr::kColX, Tr::kColY);
    if (blocks >= Tr::kColSplitBlocks || R < Tr::kColSplitMin) {
      const dim3 grid(clamp_grid((inner + Tr::kColX - 1) / Tr::kColX), clamp_grid(outer));
      IRIS_LAUNCH((reduce_cols_kernel<T, Op, false>), grid, block, 0, nullptr, outer, R, inner, R,
                  x, out, static_cast<State*>(nullptr), p);
      return;
    }
    // Few column blocks over a long R: split R in chunks (more blocks), then fold.
    int64_t chunks = (Tr::kColSplitBlocks + blocks - 1) / blocks;
    const int64_t by_rows = (R + Tr::kColSplitRows - 1) / Tr::kColSplitRows;
    chunks = chunks < by_rows ? chunks : by_rows;
    chunks = chunks < Tr::kColSplitMaxChunks ? chunks : Tr::kColSplitMaxChunks;
    int64_t chunk_len = (R + chunks - 1) / chunks;
    chunk_len = (chunk_len + Tr::kColY - 1) / Tr::kColY * Tr::kColY;
    chunks = (R + chunk_len - 1) / chunk_len;
    const int64_t count = outer * inner;
    const Tensor scratch = Tensor::empty({chunks * count * static_cast<int64_t>(sizeof(State))},
                                         DType::u8, device);
    State* partials = static_cast<State*>(scratch.raw_data());
    const dim3 grid(clamp_grid((inner + Tr::kColX - 1) / Tr::kColX), clamp_grid(outer),
                    static_cast<unsigned>(chunks));
    IRIS_LAUNCH((reduce_cols_kernel<T, Op, true>), grid, block, 0, nullptr, outer, R, inner,
                chunk_len, x, out, partials, p);
    IRIS_LAUNCH((reduce_col_partials_kernel<Op>),
                dim3(clamp_grid((count + Tr::kThreads - 1) / Tr::kThreads)), dim3(Tr::kThreads), 0,
                nullptr, count, chunks, static_cast<const State*>(partials), out, p);
  } else if (outer < Tr::kSplitRowsMax && R >= Tr::kSplitMin) {
    using State = typename Op::State;
    const int64_t chunks = (R + Tr::kSplitChunk - 1) / Tr::kSplitChunk;
    // scratch through the device's caching allocator (stream-ordered reuse)
    const Tensor scratch = Tensor::empty({outer * chunks * static_cast<int64_t>(sizeof(State))},
                                         DType::u8, device);
    State* partials = static_cast<State*>(scratch.raw_data());
    IRIS_LAUNCH((reduce_chunks_kernel<T, Op>), dim3(clamp_grid(outer * chunks)),
                dim3(Tr::kThreads), 0, nullptr, outer, R, chunks, x, partials);
    IRIS_LAUNCH((reduce_partials_kernel<Op>), dim3(clamp_grid(outer)), dim3(Tr::kThreads), 0,
                nullptr, outer, chunks, static_cast<const State*>(partials), out, p);
  } else if (R <= Tr::kWarpRowMax) {
    IRIS_LAUNCH((reduce_rows_warp_kernel<T, Op>),
                dim3(clamp_grid((outer + Tr::kWarps - 1) / Tr::kWarps)), dim3(Tr::kThreads), 0,
                nullptr, outer, R, x, out, p);
  } else {
    IRIS_LAUNCH((reduce_rows_block_kernel<T, Op>), dim3(clamp_grid(outer)), dim3(Tr::kThreads),
                0, nullptr, outer, R, x, out, p);
  }
}

void reduce_cuda(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out,
                 int64_t correction) {
  const char* name = kernels::reduce_name(op);
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[d] = true;
  int64_t R = 1;
  for (int64_t d : dims) R *= x.size(d);
  IRIS_CHECK(R > 0 || op == ReduceOp::sum || op == ReduceOp::mean, name,
             ": cannot reduce an empty dimension of ", x.desc());
  IRIS_CHECK(out.is_contiguous(), name, ": output must be dense, got ", out.desc());
  if (R == 0) {  // sum of nothing is 0, mean is NaN
    const double nan = std::numeric_limits<double>::quiet_NaN();
    kernels::fill_table().get(out.device())(out, op == ReduceOp::sum ? 0.0 : nan);
    return;
  }
  const int64_t count = out.numel();
  if (count == 0) return;

  // [outer, R, inner] straight from x when it is dense and the reduced dims (of
  // extent > 1) are one contiguous block; otherwise the reduced dims permuted last.
  Tensor src = x;
  int64_t outer = count, inner = 1;
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < nd; ++d)
    if (reduced[d] && x.size(d) > 1) {
      if (first < 0) first = d;
      last = d;
    }
  bool block = true;
  for (int64_t d = first; first >= 0 && d <= last; ++d)
    block = block && (reduced[d] || x.size(d) == 1);
  if (x.is_contiguous() && block) {
    inner = 1;
    if (first >= 0)
      for (int64_t d = last + 1; d < nd; ++d) inner *= x.size(d);
    outer = count / inner;
  } else {
    Shape perm_shape, perm_strides;
    for (int64_t d = 0; d < nd; ++d)
      if (!reduced[d]) perm_shape.push_back(x.size(d)), perm_strides.push_back(x.stride(d));
    for (int64_t d : dims) perm_shape.push_back(x.size(d)), perm_strides.push_back(x.stride(d));
    src = x.as_strided(perm_shape, perm_strides, x.offset());
    if (!src.is_contiguous()) {
      Tensor dense = Tensor::empty(perm_shape, x.dtype(), x.device());
      kernels::copy_table().get(x.device())(src, dense);
      src = dense;
    }
  }
  const Params p{op, R, correction};
  const Device dev = x.device();
  ops::dispatch_numeric_or_half(x.dtype(), name, [&]<class T>() {
    const T* px = static_cast<const T*>(src.raw_data());
    void* po = out.raw_data();
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::mean: return launch_reduce<T, SumOp<T>>(dev, outer, R, inner, px, po, p);
      case ReduceOp::max:
      case ReduceOp::argmax: return launch_reduce<T, ArgOp<T, true>>(dev, outer, R, inner, px, po, p);
      case ReduceOp::min:
      case ReduceOp::argmin: return launch_reduce<T, ArgOp<T, false>>(dev, outer, R, inner, px, po, p);
      case ReduceOp::var: return launch_reduce<T, VarOp<T>>(dev, outer, R, inner, px, po, p);
    }
  });
}

// cumsum over rows of x [rows, n]: a warp per row, 32 elements at a time (a
// shuffle scan plus the carry of the previous chunks).
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    cumsum_rows_kernel(int64_t rows, int64_t n, const T* x, T* out) {
  using A = Acc<T>;
  const int lane = threadIdx.x & 31;
  const int64_t step = static_cast<int64_t>(gridDim.x) * Tr::kWarps;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * Tr::kWarps + threadIdx.x / 32; row < rows;
       row += step) {
    const T* xr = x + row * n;
    T* orow = out + row * n;
    A carry = 0;
    for (int64_t c0 = 0; c0 < n; c0 += 32) {
      const int64_t i = c0 + lane;
      A v = i < n ? static_cast<A>(load_compute(xr[i])) : A(0);
      for (int o = 1; o < 32; o <<= 1) {
        const A u = __shfl_up_sync(kFullMask, v, o);
        if (lane >= o) v += u;
      }
      v += carry;
      if (i < n) orow[i] = convert_value<T>(v);
      carry = __shfl_sync(kFullMask, v, 31);
    }
  }
}

// cumsum over the middle dim of x [outer, n, inner]: a thread per (o, k) column,
// adjacent threads on adjacent k (coalesced).
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    cumsum_cols_kernel(int64_t outer, int64_t n, int64_t inner, const T* x, T* out) {
  using A = Acc<T>;
  const int64_t total = outer * inner;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < total;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = c / inner, k = c % inner;
    const int64_t base = o * n * inner + k;
    A s = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += static_cast<A>(load_compute(x[base + i * inner]));
      out[base + i * inner] = convert_value<T>(s);
    }
  }
}

void cumsum_cuda(const Tensor& x, int64_t dim, const Tensor& out) {
  IRIS_CHECK(out.is_contiguous(), "cumsum: output must be dense, got ", out.desc());
  if (x.numel() == 0) return;
  Tensor src = x;
  if (!x.is_contiguous()) {
    src = Tensor::empty(x.shape(), x.dtype(), x.device());
    kernels::copy_table().get(x.device())(x, src);
  }
  const int64_t n = x.size(dim);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  ops::dispatch_numeric_or_half(x.dtype(), "cumsum", [&]<class T>() {
    const T* px = static_cast<const T*>(src.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (inner == 1)
      IRIS_LAUNCH(cumsum_rows_kernel<T>, dim3(clamp_grid((outer + Tr::kWarps - 1) / Tr::kWarps)),
                  dim3(Tr::kThreads), 0, nullptr, outer, n, px, po);
    else
      IRIS_LAUNCH(cumsum_cols_kernel<T>,
                  dim3(clamp_grid((outer * inner + Tr::kThreads - 1) / Tr::kThreads)),
                  dim3(Tr::kThreads), 0, nullptr, outer, n, inner, px, po);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(reduce, CUDA, reduce_cuda);
IRIS_REGISTER_KERNEL(cumsum, CUDA, cumsum_cuda);

}  // namespace iris::IRIS_KERNEL_NS

#undef IRIS_DEV
