// CUDA elementwise kernels: unary, its derivative and binary ops through one mapped kernel
// (a 128-bit vectorised path for dense aligned operands, a strided one otherwise); compare,
// where, copy, fill and Philox random as grid-stride kernels over N-d strided operands.
// The math is kernels/elementwise_math.h, shared with the CPU backend; bf16/f16 compute in
// float and round once at the store, as on the CPU.
#include <cstdint>

#include "kernels/cuda/ops_launch.cuh"

#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_math.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;
using kernels::UnaryParams;

struct LaunchTraits {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this
  static constexpr int kMaxDims = 8;
  static constexpr int kVecBytes = 16;  // one 128-bit load or store
  static_assert(kThreads % 32 == 0);
};

// Operand k's element offset for linear index i: dims innermost last, coalesced.
template <int N>
struct Geometry {
  int ndim = 0;
  int64_t sizes[LaunchTraits::kMaxDims];
  int64_t strides[N][LaunchTraits::kMaxDims];

  IRIS_HD void offsets(int64_t i, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t idx = i % sizes[d];
      i /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

template <int N>
Geometry<N> make_geometry(const Shape& shape, const Tensor* const (&ops)[N]) {
  Geometry<N> g;
  int64_t sizes[16], strides[N][16];
  int nd = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {  // innermost first
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; merge && k < N; ++k)
      merge = strides[k][nd - 1] * sizes[nd - 1] == ops[k]->stride(d);
    if (merge) {
      sizes[nd - 1] *= shape[d];
      continue;
    }
    sizes[nd] = shape[d];
    for (int k = 0; k < N; ++k) strides[k][nd] = ops[k]->stride(d);
    ++nd;
  }
  IRIS_CHECK(nd <= LaunchTraits::kMaxDims, "cuda elementwise: more than ",
             LaunchTraits::kMaxDims, " non-mergeable dims in ", shape_str(shape));
  g.ndim = nd;
  for (int d = 0; d < nd; ++d) {  // store outermost first
    g.sizes[d] = sizes[nd - 1 - d];
    for (int k = 0; k < N; ++k) g.strides[k][d] = strides[k][nd - 1 - d];
  }
  return g;
}

dim3 grid_for(int64_t n) {
  const int64_t blocks = (n + LaunchTraits::kThreads - 1) / LaunchTraits::kThreads;
  return dim3(static_cast<unsigned>(blocks < LaunchTraits::kMaxBlocks ? blocks
                                                                      : LaunchTraits::kMaxBlocks));
}

template <class T>
IRIS_HD T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow:
      if constexpr (std::is_floating_point_v<T>) return std::pow(a, b);
      else return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case BinaryOp::maximum: return a != a ? a : (a > b ? a : b);
    case BinaryOp::minimum: return a != a ? a : (a < b ? a : b);
  }
  return a;
}

// The arithmetic of the mapped kernels, in the compute type C (float for bf16/f16).
struct UnaryFn {
  UnaryOp op;
  UnaryParams p;
  template <class C>
  IRIS_HD C operator()(C x) const { return kernels::unary_value<C>(op, p, x); }
};
struct UnaryBackwardFn {
  UnaryOp op;
  UnaryParams p;
  bool recompute_y;  // 16-bit y: recomputed in float from x, without y's rounding (as the CPU)
  template <class C>
  IRIS_HD C operator()(C x, C y, C dy) const {
    const C y_used = recompute_y ? kernels::unary_value<C>(op, p, x) : y;
    return dy * kernels::unary_derivative<C>(op, p, x, y_used);
  }
};
struct BinaryFn {
  BinaryOp op;
  template <class C>
  IRIS_HD C operator()(C a, C b) const { return binary_value<C>(op, a, b); }
};

// fn over N storage values: loaded to the compute type, rounded once at the store.
template <class T, int N, class Fn>
IRIS_HD T apply(const Fn& fn, const T (&v)[N]) {
  if constexpr (N == 1) return ops::store_compute<T>(fn(ops::load_compute(v[0])));
  else if constexpr (N == 2)
    return ops::store_compute<T>(fn(ops::load_compute(v[0]), ops::load_compute(v[1])));
  else
    return ops::store_compute<T>(
        fn(ops::load_compute(v[0]), ops::load_compute(v[1]), ops::load_compute(v[2])));
}

template <class T, int N>
struct Inputs {
  const T* p[N];
  bool scalar[N];  // a broadcast single element (dense path only)
};

// The general path: any strides and broadcasts, one element per thread per step.
template <class T, int N, class Fn>
__global__ void map_strided_kernel(Fn fn, int64_t n, Geometry<N + 1> g, T* out, Inputs<T, N> in) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    int64_t off[N + 1];
    g.offsets(i, off);
    T v[N];
    for (int k = 0; k < N; ++k) v[k] = in.p[k][off[k + 1]];
    out[off[0]] = apply<T, N>(fn, v);
  }
}

// One 128-bit access: 4 floats, 8 halves.
template <class T>
struct alignas(LaunchTraits::kVecBytes) Pack {
  static constexpr int kSize = LaunchTraits::kVecBytes / static_cast<int>(sizeof(T));
  T v[kSize];
};

// The vectorised path: dense operands (or broadcast scalars) on 16-byte aligned pointers,
// whole packs by 128-bit loads and stores, then the tail element by element.
template <class T, int N, class Fn>
__global__ void map_dense_kernel(Fn fn, int64_t n, T* out, Inputs<T, N> in) {
  constexpr int kPack = Pack<T>::kSize;
  const int64_t packs = n / kPack;
  IRIS_OPS_GRID_STRIDE(i, packs) {
    Pack<T> src[N];
    for (int k = 0; k < N; ++k) {
      if (in.scalar[k]) {
        const T s = in.p[k][0];
        for (int j = 0; j < kPack; ++j) src[k].v[j] = s;
      } else {
        src[k] = reinterpret_cast<const Pack<T>*>(in.p[k])[i];
      }
    }
    Pack<T> dst;
    for (int j = 0; j < kPack; ++j) {
      T v[N];
      for (int k = 0; k < N; ++k) v[k] = src[k].v[j];
      dst.v[j] = apply<T, N>(fn, v);
    }
    reinterpret_cast<Pack<T>*>(out)[i] = dst;
  }
  IRIS_OPS_GRID_STRIDE(t, n - packs * kPack) {
    const int64_t i = packs * kPack + t;
    T v[N];
    for (int k = 0; k < N; ++k) v[k] = in.p[k][in.scalar[k] ? 0 : i];
    out[i] = apply<T, N>(fn, v);
  }
}

bool aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % LaunchTraits::kVecBytes == 0;
}

// True when every stride is 0: one element broadcast to the whole shape.
bool is_broadcast_scalar(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1 && t.stride(d) != 0) return false;
  return true;
}

// out = fn(ins...) elementwise: the vectorised kernel where the operands allow it, else the
// strided one.
template <class T, int N, class Fn>
void launch_map(const Fn& fn, const Tensor& out, const Tensor* const (&ins)[N]) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Inputs<T, N> in;
  bool dense = out.is_contiguous() && aligned(out.raw_data());
  for (int k = 0; k < N; ++k) {
    in.p[k] = static_cast<const T*>(ins[k]->raw_data());
    in.scalar[k] = ins[k]->numel() > 1 && is_broadcast_scalar(*ins[k]);
    dense = dense && (in.scalar[k] || (ins[k]->is_contiguous() && aligned(in.p[k])));
  }
  T* po = static_cast<T*>(out.raw_data());
  if (dense) {
    const int64_t work = n / Pack<T>::kSize + n % Pack<T>::kSize;
    IRIS_LAUNCH((map_dense_kernel<T, N, Fn>), grid_for(work), dim3(LaunchTraits::kThreads), 0,
                nullptr, fn, n, po, in);
    return;
  }
  for (int k = 0; k < N; ++k) in.scalar[k] = false;
  const Tensor* geo_ops[N + 1] = {&out};
  for (int k = 0; k < N; ++k) geo_ops[k + 1] = ins[k];
  IRIS_LAUNCH((map_strided_kernel<T, N, Fn>), grid_for(n), dim3(LaunchTraits::kThreads), 0,
              nullptr, fn, n, make_geometry(out.shape(), geo_ops), po, in);
}

template <class T>
__global__ void compare_kernel(CompareOp op, int64_t n, Geometry<3> g, uint8_t* out, const T* a,
                               const T* b) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    int64_t off[3];
    g.offsets(i, off);
    const auto u = ops::load_compute(a[off[1]]), v = ops::load_compute(b[off[2]]);
    bool r = false;
    switch (op) {
      case CompareOp::eq: r = u == v; break;
      case CompareOp::ne: r = u != v; break;
      case CompareOp::lt: r = u < v; break;
      case CompareOp::le: r = u <= v; break;
      case CompareOp::gt: r = u > v; break;
      case CompareOp::ge: r = u >= v; break;
    }
    out[off[0]] = r ? 1 : 0;
  }
}

template <class T>
__global__ void where_kernel(int64_t n, Geometry<4> g, T* out, const uint8_t* cond, const T* a,
                             const T* b) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    int64_t off[4];
    g.offsets(i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

template <class T>
IRIS_HD bool is_nonzero(T v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    return convert_value<float>(v) != 0.0f;
  else
    return v != T(0);
}

template <class TD, class TS>
__global__ void copy_kernel(int64_t n, Geometry<2> g, TD* dst, const TS* src, bool to_bool) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    int64_t off[2];
    g.offsets(i, off);
    const TS v = src[off[1]];
    dst[off[0]] = to_bool ? convert_value<TD>(static_cast<uint8_t>(is_nonzero(v)))
                          : convert_value<TD>(v);
  }
}

template <class T>
__global__ void fill_kernel(int64_t n, Geometry<1> g, T* dst, T value) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    int64_t off[1];
    g.offsets(i, off);
    dst[off[0]] = value;
  }
}

// Element i of a dense destination is Philox (seed, offset + i), as on the CPU.
template <class T>
__global__ void random_kernel(bool normal, int64_t n, T* dst, double a, double scale,
                              uint64_t seed, uint64_t offset) {
  IRIS_OPS_GRID_STRIDE(i, n) {
    const uint64_t k = offset + static_cast<uint64_t>(i);
    const double r = normal ? philox::normal(seed, k) : philox::uniform(seed, k);
    dst[i] = convert_value<T>(a + scale * r);
  }
}

// Runs fn.template operator()<T>() for the dtypes the CUDA elementwise kernels compute in.
template <class Fn>
void dispatch(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::i32: return fn.template operator()<int32_t>();
    case DType::i64: return fn.template operator()<int64_t>();
    case DType::u8: case DType::b8: return fn.template operator()<uint8_t>();
    default: IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda");
  }
}

// Every dtype by its storage type: copies convert to and from the 16-bit floats.
template <class Fn>
void dispatch_storage(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::bf16: return fn.template operator()<bf16>();
    case DType::f16: return fn.template operator()<f16>();
    default: return dispatch(dt, op, std::forward<Fn>(fn));
  }
}

void unary_cuda(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& out) {
  ops::dispatch_float_or_half(x.dtype(), kernels::unary_name(op), [&]<class T>() {
    const Tensor* ins[1] = {&x};
    launch_map<T, 1>(UnaryFn{op, p}, out, ins);
  });
}

void unary_backward_cuda(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& y,
                         const Tensor& dy, const Tensor& dx) {
  ops::dispatch_float_or_half(dx.dtype(), kernels::unary_name(op), [&]<class T>() {
    const Tensor* ins[3] = {&x, &y, &dy};
    launch_map<T, 3>(UnaryBackwardFn{op, p, ops::is_half_v<T>}, dx, ins);
  });
}

void binary_cuda(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_storage(out.dtype(), "binary", [&]<class T>() {
    const Tensor* ins[2] = {&a, &b};
    launch_map<T, 2>(BinaryFn{op}, out, ins);
  });
}

void compare_cuda(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_storage(a.dtype(), "compare", [&]<class T>() {
    const Tensor* ops[3] = {&out, &a, &b};
    IRIS_LAUNCH(compare_kernel<T>, grid_for(n), dim3(LaunchTraits::kThreads), 0, nullptr, op, n,
                make_geometry(out.shape(), ops), static_cast<uint8_t*>(out.raw_data()),
                static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()));
  });
}

void where_cuda(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_storage(out.dtype(), "where", [&]<class T>() {
    const Tensor* ops[4] = {&out, &cond, &a, &b};
    IRIS_LAUNCH(where_kernel<T>, grid_for(n), dim3(LaunchTraits::kThreads), 0, nullptr, n,
                make_geometry(out.shape(), ops), static_cast<T*>(out.raw_data()),
                static_cast<const uint8_t*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
                static_cast<const T*>(b.raw_data()));
  });
}

void copy_cuda(const Tensor& src, const Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const bool to_bool = dst.dtype() == DType::b8 && src.dtype() != DType::b8;
  dispatch_storage(dst.dtype(), "copy", [&]<class TD>() {
    dispatch_storage(src.dtype(), "copy", [&]<class TS>() {
      const Tensor* ops[2] = {&dst, &src};
      IRIS_LAUNCH((copy_kernel<TD, TS>), grid_for(n), dim3(LaunchTraits::kThreads), 0, nullptr,
                  n, make_geometry(dst.shape(), ops), static_cast<TD*>(dst.raw_data()),
                  static_cast<const TS*>(src.raw_data()), to_bool);
    });
  });
}

void fill_cuda(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  dispatch_storage(dst.dtype(), "fill", [&]<class T>() {
    const Tensor* ops[1] = {&dst};
    const T v = dst.dtype() == DType::b8 ? convert_value<T>(value != 0) : convert_value<T>(value);
    IRIS_LAUNCH(fill_kernel<T>, grid_for(n), dim3(LaunchTraits::kThreads), 0, nullptr, n,
                make_geometry(dst.shape(), ops), static_cast<T*>(dst.raw_data()), v);
  });
}

void random_cuda(kernels::RandomKind kind, const Tensor& dst, double a, double scale,
                 uint64_t seed, uint64_t offset) {
  IRIS_CHECK(dst.is_contiguous(), "random: destination must be contiguous, got strides ",
             shape_str(dst.strides()));
  const int64_t n = dst.numel();
  if (n == 0) return;
  ops::dispatch_float_or_half(dst.dtype(), "random", [&]<class T>() {
    IRIS_LAUNCH(random_kernel<T>, grid_for(n), dim3(LaunchTraits::kThreads), 0, nullptr,
                kind == kernels::RandomKind::normal, n, static_cast<T*>(dst.raw_data()), a, scale,
                seed, offset);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(unary, CUDA, unary_cuda);
IRIS_REGISTER_KERNEL(unary_backward, CUDA, unary_backward_cuda);
IRIS_REGISTER_KERNEL(binary, CUDA, binary_cuda);
IRIS_REGISTER_KERNEL(compare, CUDA, compare_cuda);
IRIS_REGISTER_KERNEL(where, CUDA, where_cuda);
IRIS_REGISTER_KERNEL(copy, CUDA, copy_cuda);
IRIS_REGISTER_KERNEL(fill, CUDA, fill_cuda);
IRIS_REGISTER_KERNEL(random, CUDA, random_cuda);

}  // namespace iris::IRIS_KERNEL_NS
