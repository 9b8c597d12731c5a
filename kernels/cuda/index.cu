// CUDA indexing and joining kernels, the CPU backend's semantics on dense row-major
// tensors split around `dim` as [outer, size, inner]:
// - cat: one launch; blockIdx.y picks the input (a device table of pointer, offset and
//   width), a grid-stride copy of its rows into the output (coalesced both sides).
// - index_select / gather: a thread per output element (coalesced writes).
// - index_add: the indices are bucketed by destination row on the host (a stable
//   counting sort, as the embedding backward does), then a thread per (outer, row, column)
//   adds its bucket in increasing k onto the existing value: the CPU's order, no atomics.
// - scatter_add: a thread per fibre along dim walks k in order (fibres write disjoint
//   elements); with too few fibres to fill the GPU, a thread per destination element scans
//   its fibre's indices in order instead. Both sum in the CPU's order, no atomics.
// - bf16/f16 index_add / scatter_add accumulate in float (a register, or for the fibre
//   kernel a float copy of out) and round once: the CPU's sums and bits, no 16-bit atomics.
// - check_index_range: the first bad position is found on the device (atomicMin on a
//   flag word) and reported by the host as the CPU's iris::Error.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/emu/cuda_compat.h"
#include "kernels/index.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct IndexTraits {
  static constexpr int kThreads = ops::GridTraits::kThreads;
  static constexpr int kMaxDims = 16;              // the op layer's limit
  static constexpr int64_t kMaxCatInputs = 65535;  // gridDim.y per cat launch
  // scatter_add: below this many fibres, scan per destination element (if the scan's
  // comparisons stay under kMaxScanWork).
  static constexpr int64_t kScanFibres = 2048;
  static constexpr int64_t kMaxScanWork = int64_t(1) << 31;
  static_assert(kThreads % 32 == 0 && kScanFibres >= 1 && kMaxScanWork >= 1);
};
using Tr = IndexTraits;

struct Split3 {
  int64_t outer, size, inner;
};
Split3 split3(const Shape& s, int64_t dim) {
  if (s.empty()) return {1, 1, 1};
  Split3 r{1, s[dim], 1};
  for (int64_t d = 0; d < dim; ++d) r.outer *= s[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(s.size()); ++d) r.inner *= s[d];
  return r;
}

// ---- cat ----

// Per input: source pointer, element offset inside an output row, elements per row.
template <class W>
__global__ void __launch_bounds__(Tr::kThreads)
    cat_kernel(const int64_t* table, int64_t outer, int64_t row, W* out) {
  const int64_t* e = table + 3 * static_cast<int64_t>(blockIdx.y);
  const W* src = reinterpret_cast<const W*>(static_cast<uintptr_t>(e[0]));
  const int64_t begin = e[1], piece = e[2];
  IRIS_OPS_GRID_STRIDE(i, outer * piece) {
    const int64_t r = i / piece;
    out[r * row + begin + (i - r * piece)] = src[i];
  }
}

void cat_cuda(const std::vector<Tensor>& inputs, int64_t dim, const Tensor& out) {
  IRIS_CHECK(out.is_contiguous(), "cat: cuda expects a dense output, got ", out.desc());
  const Split3 o = split3(out.shape(), dim);
  const int64_t row = o.size * o.inner;
  if (o.outer * row == 0) return;
  std::vector<int64_t> table;
  int64_t begin = 0, widest = 0;
  for (const Tensor& t : inputs) {
    const int64_t piece = (t.dim() == 0 ? 1 : t.size(dim)) * o.inner;
    if (piece > 0) {
      IRIS_CHECK(t.is_contiguous() && t.dtype() == out.dtype(),
                 "cat: cuda expects dense inputs of the output's dtype, got ", t.desc());
      table.push_back(static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.raw_data())));
      table.push_back(begin);
      table.push_back(piece);
      widest = std::max(widest, piece);
    }
    begin += piece;
  }
  const int64_t n = static_cast<int64_t>(table.size()) / 3;
  if (n == 0) return;
  const Tensor d_table = Tensor::from_vector(table, {n * 3}, out.device());
  const dim3 grid_x = ops::flat_grid(o.outer * widest);
  ops::dispatch_bits(out.dtype(), [&]<class W>() {
    for (int64_t first = 0; first < n; first += Tr::kMaxCatInputs) {
      const int64_t count = std::min(Tr::kMaxCatInputs, n - first);
      IRIS_LAUNCH(cat_kernel<W>, dim3(grid_x.x, static_cast<unsigned>(count)), dim3(Tr::kThreads),
                  0, nullptr, ops::ptr<const int64_t>(d_table) + 3 * first, o.outer, row,
                  ops::ptr<W>(out));
    }
  });
}

// ---- index_select / index_add ----

// out[o, k, j] = x[o, index[k], j]; an index outside [0, size) (the op layer has checked
// them) yields 0 rather than a stray read.
template <class W>
__global__ void __launch_bounds__(Tr::kThreads)
    index_select_kernel(const W* x, const int64_t* index, Split3 s, int64_t K, W* out) {
  IRIS_OPS_GRID_STRIDE(e, s.outer * K * s.inner) {
    const int64_t j = e % s.inner, ok = e / s.inner;
    const int64_t k = ok % K, o = ok / K;
    const int64_t r = index[k];
    out[e] = r >= 0 && r < s.size ? x[(o * s.size + r) * s.inner + j] : W(0);
  }
}

void check_dense(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    IRIS_CHECK(t->is_contiguous(), op, ": cuda expects dense tensors, got ", t->desc());
}

void index_select_cuda(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  check_dense("index_select", {&x, &index, &out});
  const Split3 s = split3(x.shape(), dim);
  const int64_t K = index.numel(), n = s.outer * K * s.inner;
  if (n == 0) return;
  ops::dispatch_bits(x.dtype(), [&]<class W>() {
    IRIS_LAUNCH(index_select_kernel<W>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const W>(x), ops::ptr<const int64_t>(index), s, K, ops::ptr<W>(out));
  });
}

// Destination row rows[u] of every outer slice receives src rows order[start[u] ..
// start[u + 1]) in that (increasing k) order.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    index_add_kernel(T* out, const T* src, const int64_t* rows, const int64_t* start,
                     const int64_t* order, Split3 s, int64_t U, int64_t K) {
  IRIS_OPS_GRID_STRIDE(e, s.outer * U * s.inner) {
    const int64_t j = e % s.inner, ou = e / s.inner;
    const int64_t u = ou % U, o = ou / U;
    T* to = out + (o * s.size + rows[u]) * s.inner + j;
    ops::compute_t<T> v = ops::load_compute(*to);
    const int64_t q1 = start[u + 1];
    for (int64_t q = start[u]; q < q1; ++q)
      v += ops::load_compute(src[(o * K + order[q]) * s.inner + j]);
    *to = ops::store_compute<T>(v);
  }
}

void index_add_cuda(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  check_dense("index_add", {&out, &index, &src});
  const Split3 s = split3(out.shape(), dim);
  const int64_t K = index.numel();
  if (K == 0 || s.outer * s.inner == 0) return;
  // Stable counting sort of the positions k by destination row, kept to the rows used.
  const std::vector<int64_t> idx = index.to(Device::cpu()).to_vector<int64_t>();
  std::vector<int64_t> count(s.size + 1, 0);
  for (int64_t k = 0; k < K; ++k) {
    IRIS_CHECK(idx[k] >= 0 && idx[k] < s.size, "index_add: index ", idx[k],
               " is out of range for dim ", dim, " of size ", s.size, " (at position ", k, ")");
    ++count[idx[k] + 1];
  }
  std::vector<int64_t> rows, start{0};
  for (int64_t r = 0; r < s.size; ++r) {
    if (count[r + 1] == 0) continue;
    rows.push_back(r);
    start.push_back(start.back() + count[r + 1]);
  }
  for (int64_t r = 0; r < s.size; ++r) count[r + 1] += count[r];
  std::vector<int64_t> order(K);
  for (int64_t k = 0; k < K; ++k) order[count[idx[k]]++] = k;
  const int64_t U = static_cast<int64_t>(rows.size());
  const Tensor d_rows = Tensor::from_vector(rows, {U}, out.device());
  const Tensor d_start = Tensor::from_vector(start, {U + 1}, out.device());
  const Tensor d_order = Tensor::from_vector(order, {K}, out.device());
  const int64_t n = s.outer * U * s.inner;
  ops::dispatch_numeric_or_half(out.dtype(), "index_add", [&]<class T>() {
    IRIS_LAUNCH(index_add_kernel<T>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<T>(out), ops::ptr<const T>(src), ops::ptr<const int64_t>(d_rows),
                ops::ptr<const int64_t>(d_start), ops::ptr<const int64_t>(d_order), s, U, K);
  });
}

// ---- gather / scatter_add ----

// The index's shape and the strides of the tensors it addresses (dense, so the strides
// are their own shapes' contiguous strides; index may be smaller in every dim).
struct IndexGeom {
  int nd = 0, dim = 0;
  int64_t ishape[Tr::kMaxDims];
  int64_t a_stride[Tr::kMaxDims];  // gather: x; scatter_add: out
  int64_t b_stride[Tr::kMaxDims];  // scatter_add: src

  // Offsets in a and b of index position p, leaving out the coordinate along dim.
  IRIS_HD void offsets(int64_t p, int64_t& a, int64_t& b) const {
    a = 0, b = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t q = p / ishape[d];
      const int64_t c = p - q * ishape[d];
      p = q;
      if (d == dim) continue;
      a += c * a_stride[d];
      b += c * b_stride[d];
    }
  }
};

Shape shape_1d(const Tensor& t) { return t.dim() == 0 ? Shape{1} : t.shape(); }

IndexGeom index_geom(const Tensor& index, int64_t dim, const Tensor& a, const Tensor* b) {
  IndexGeom g;
  const Shape is = shape_1d(index);
  const Shape as = contiguous_strides(shape_1d(a));
  const Shape bs = b ? contiguous_strides(shape_1d(*b)) : as;
  IRIS_CHECK(static_cast<int>(is.size()) <= Tr::kMaxDims, "index ops: at most ", Tr::kMaxDims,
             " dims on cuda, got ", index.desc());
  g.nd = static_cast<int>(is.size());
  g.dim = static_cast<int>(dim);
  for (int d = 0; d < g.nd; ++d) g.ishape[d] = is[d], g.a_stride[d] = as[d], g.b_stride[d] = bs[d];
  return g;
}

template <class W>
__global__ void __launch_bounds__(Tr::kThreads)
    gather_kernel(const W* x, const int64_t* index, IndexGeom g, int64_t n, int64_t x_size,
                  W* out) {
  IRIS_OPS_GRID_STRIDE(p, n) {
    int64_t xo, unused;
    g.offsets(p, xo, unused);
    const int64_t r = index[p];
    out[p] = r >= 0 && r < x_size ? x[xo + r * g.a_stride[g.dim]] : W(0);
  }
}

void gather_cuda(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  check_dense("gather", {&x, &index, &out});
  const int64_t n = index.numel();
  if (n == 0) return;
  const IndexGeom g = index_geom(index, dim, x, nullptr);
  const int64_t x_size = shape_1d(x)[dim];
  ops::dispatch_bits(x.dtype(), [&]<class W>() {
    IRIS_LAUNCH(gather_kernel<W>, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                ops::ptr<const W>(x), ops::ptr<const int64_t>(index), g, n, x_size,
                ops::ptr<W>(out));
  });
}

// A thread per fibre f = (o, q) of the index along dim: out[.., index[o, k, q], ..] +=
// src[o, k, q] for k in order. Fibres write disjoint elements of out, which is of the compute
// type A (out itself, or a float copy for bf16/f16).
template <class T, class A>
__global__ void __launch_bounds__(Tr::kThreads)
    scatter_add_fibre_kernel(A* out, const T* src, const int64_t* index, IndexGeom g, Split3 s,
                             int64_t out_size) {
  IRIS_OPS_GRID_STRIDE(f, s.outer * s.inner) {
    const int64_t o = f / s.inner, q = f - o * s.inner;
    const int64_t p0 = o * s.size * s.inner + q;
    int64_t oo, so;
    g.offsets(p0, oo, so);
    const int64_t ost = g.a_stride[g.dim], sst = g.b_stride[g.dim];
    for (int64_t k = 0; k < s.size; ++k) {
      const int64_t r = index[p0 + k * s.inner];
      if (r >= 0 && r < out_size) out[oo + r * ost] += ops::load_compute(src[so + k * sst]);
    }
  }
}

// A thread per destination element (fibre f, row r), fibres fastest: adds the fibre's
// sources whose index is r, in increasing k (the fibre kernel's order, so the same sums).
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    scatter_add_scan_kernel(T* out, const T* src, const int64_t* index, IndexGeom g, Split3 s,
                            int64_t out_size) {
  const int64_t F = s.outer * s.inner;
  IRIS_OPS_GRID_STRIDE(e, F * out_size) {
    const int64_t r = e / F, f = e - r * F;
    const int64_t o = f / s.inner, q = f - o * s.inner;
    const int64_t p0 = o * s.size * s.inner + q;
    int64_t oo, so;
    g.offsets(p0, oo, so);
    const int64_t sst = g.b_stride[g.dim];
    T* to = out + oo + r * g.a_stride[g.dim];
    ops::compute_t<T> v = ops::load_compute(*to);
    for (int64_t k = 0; k < s.size; ++k)
      if (index[p0 + k * s.inner] == r) v += ops::load_compute(src[so + k * sst]);
    *to = ops::store_compute<T>(v);
  }
}

// Element-wise conversion between a storage type and its compute type (float scratch).
template <class TO, class TI>
__global__ void __launch_bounds__(Tr::kThreads) convert_kernel(const TI* in, int64_t n, TO* out) {
  IRIS_OPS_GRID_STRIDE(i, n) out[i] = convert_value<TO>(in[i]);
}

void scatter_add_cuda(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  check_dense("scatter_add", {&out, &index, &src});
  if (index.numel() == 0) return;
  const Split3 s = split3(shape_1d(index), dim);
  const IndexGeom g = index_geom(index, dim, out, &src);
  const int64_t out_size = shape_1d(out)[dim];
  const int64_t fibres = s.outer * s.inner;
  const bool scan = fibres < Tr::kScanFibres && fibres * out_size * s.size <= Tr::kMaxScanWork;
  ops::dispatch_numeric_or_half(out.dtype(), "scatter_add", [&]<class T>() {
    if (scan) {
      IRIS_LAUNCH(scatter_add_scan_kernel<T>, ops::flat_grid(fibres * out_size), dim3(Tr::kThreads),
                  0, nullptr, ops::ptr<T>(out), ops::ptr<const T>(src),
                  ops::ptr<const int64_t>(index), g, s, out_size);
    } else if constexpr (ops::is_half_v<T>) {
      const int64_t n = out.numel();
      const Tensor acc = Tensor::empty({n}, DType::f32, out.device());
      IRIS_LAUNCH((convert_kernel<float, T>), ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                  ops::ptr<const T>(out), n, ops::ptr<float>(acc));
      IRIS_LAUNCH((scatter_add_fibre_kernel<T, float>), ops::flat_grid(fibres), dim3(Tr::kThreads),
                  0, nullptr, ops::ptr<float>(acc), ops::ptr<const T>(src),
                  ops::ptr<const int64_t>(index), g, s, out_size);
      IRIS_LAUNCH((convert_kernel<T, float>), ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
                  ops::ptr<const float>(acc), n, ops::ptr<T>(out));
    } else {
      IRIS_LAUNCH((scatter_add_fibre_kernel<T, T>), ops::flat_grid(fibres), dim3(Tr::kThreads), 0,
                  nullptr, ops::ptr<T>(out), ops::ptr<const T>(src), ops::ptr<const int64_t>(index),
                  g, s, out_size);
    }
  });
}

// ---- index validation ----

// first_bad = the lowest position whose index is outside [0, limit) (n when none).
__global__ void __launch_bounds__(Tr::kThreads)
    check_index_kernel(const int64_t* index, int64_t n, int64_t limit,
                       unsigned long long* first_bad) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    const int64_t v = index[i];
    if (v < 0 || v >= limit) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

void check_index_range_cuda(const char* op, const Tensor& index, int64_t limit, const Tensor& x,
                            int64_t dim) {
  check_dense(op, {&index});
  IRIS_CHECK(index.dtype() == DType::i64, op, ": index must be int64, got ", index.desc());
  const int64_t n = index.numel();
  if (n == 0) return;
  const Tensor flag = Tensor::from_vector<int64_t>({n}, {1}, index.device());
  IRIS_LAUNCH(check_index_kernel, ops::flat_grid(n), dim3(Tr::kThreads), 0, nullptr,
              ops::ptr<const int64_t>(index), n, limit,
              static_cast<unsigned long long*>(flag.raw_data()));
  const int64_t bad = flag.to_vector<int64_t>()[0];
  if (bad == n) return;
  const int64_t value =
      index.view({n}).slice(0, bad, bad + 1).to(Device::cpu()).to_vector<int64_t>()[0];
  IRIS_FAIL(op, ": index ", value, " is out of range for dim ", dim, " of size ", limit,
            " (at flat position ", bad, " of index ", index.desc(), "; input ", x.desc(), ")");
}

}  // namespace

IRIS_REGISTER_KERNEL(cat, CUDA, cat_cuda);
IRIS_REGISTER_KERNEL(index_select, CUDA, index_select_cuda);
IRIS_REGISTER_KERNEL(index_add, CUDA, index_add_cuda);
IRIS_REGISTER_KERNEL(gather, CUDA, gather_cuda);
IRIS_REGISTER_KERNEL(scatter_add, CUDA, scatter_add_cuda);
IRIS_REGISTER_KERNEL(check_index_range, CUDA, check_index_range_cuda);

}  // namespace iris::IRIS_KERNEL_NS
