// CUDA embedding. Forward: a coalesced row gather over the n x D outputs; an id out
// of [0, V) is recorded (smallest position, atomicMin) and reported by the host as an
// iris::Error naming it. Backward: the ids are bucketed by row with a stable counting
// sort (on the host, O(n + V)), then one thread owns each dweight element and sums
// its bucket's dout rows in increasing position: no atomics, the CPU's exact order,
// so the same bits for any launch shape; row padding_idx is zero. bf16/f16 sum in float
// and round once, as on the CPU.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/embedding.h"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct EmbeddingTraits {
  static constexpr int kThreads = 256;  // forward: flat grid-stride
  static constexpr int64_t kMaxBlocks = 4096;
  static constexpr int kColThreads = 32;   // backward: a warp across D (coalesced)
  static constexpr int kRowsPerBlock = 8;  // backward: dweight rows per block
  static constexpr int64_t kMaxRowBlocks = 65535;
  static_assert(kThreads % 32 == 0 && kColThreads == 32 && kRowsPerBlock >= 1);
};
using Tr = EmbeddingTraits;

template <class T, class I>
__global__ void __launch_bounds__(Tr::kThreads)
    embedding_forward_kernel(const T* weight, const I* ids, T* out, int64_t n, int64_t V, int64_t D,
                             unsigned long long* bad) {
  const int64_t total = n * D;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = i / D, j = i - k * D;
    const int64_t id = static_cast<int64_t>(ids[k]);
    if (id < 0 || id >= V) {
      atomicMin(bad, static_cast<unsigned long long>(k));
      out[i] = T{};
      continue;
    }
    out[i] = weight[id * D + j];
  }
}

// dweight[v, j] = sum over q in [start[v], start[v+1]) of dout[order[q], j], in order.
template <class T>
__global__ void __launch_bounds__(Tr::kColThreads* Tr::kRowsPerBlock)
    embedding_backward_kernel(const T* dout, const int64_t* start, const int64_t* order, int64_t V,
                              int64_t D, int64_t padding_idx, T* dweight) {
  const int64_t j = static_cast<int64_t>(blockIdx.y) * Tr::kColThreads + threadIdx.x;
  if (j >= D) return;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * Tr::kRowsPerBlock + threadIdx.y; v < V;
       v += static_cast<int64_t>(gridDim.x) * Tr::kRowsPerBlock) {
    ops::compute_t<T> s = 0;
    if (v != padding_idx) {
      const int64_t q1 = start[v + 1];
      for (int64_t q = start[v]; q < q1; ++q) s += ops::load_compute(dout[order[q] * D + j]);
    }
    dweight[v * D + j] = ops::store_compute<T>(s);
  }
}

template <class Fn>
void dispatch_index(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::i64:
      return fn.template operator()<int64_t>();
    case DType::i32:
      return fn.template operator()<int32_t>();
    default:
      IRIS_FAIL(op, ": indices must be int64 or int32, got ", dtype_name(dt));
  }
}

void fail_bad_id(int64_t id, int64_t V, int64_t k) {
  IRIS_FAIL("embedding: index ", id, " (at position ", k, ") is out of range for a weight of ", V,
            " rows");
}

void embedding_forward_cuda(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  IRIS_CHECK(weight.dim() == 2 && weight.is_contiguous() && ids.is_contiguous(),
             "embedding: cuda expects a dense [V, D] weight and dense ids, got ", weight.desc(),
             " and ", ids.desc());
  const int64_t V = weight.size(0), D = weight.size(1), n = ids.numel();
  if (n == 0 || D == 0) return;
  Tensor bad = Tensor::from_vector<int64_t>({n}, {1}, weight.device());
  const int64_t total = n * D;
  const int64_t want = (total + Tr::kThreads - 1) / Tr::kThreads;
  const dim3 grid(static_cast<unsigned>(std::min(want, Tr::kMaxBlocks)));
  dispatch_index(ids.dtype(), "embedding", [&]<class I>() {
    ops::dispatch_float_or_half(weight.dtype(), "embedding", [&]<class T>() {
      IRIS_LAUNCH((embedding_forward_kernel<T, I>), grid, dim3(Tr::kThreads), 0, nullptr,
                  static_cast<const T*>(weight.raw_data()), static_cast<const I*>(ids.raw_data()),
                  static_cast<T*>(out.raw_data()), n, V, D,
                  static_cast<unsigned long long*>(bad.raw_data()));
    });
    const int64_t k = bad.to_vector<int64_t>()[0];
    if (k < n) {
      const Tensor id = ids.view({n}).slice(0, k, k + 1);
      fail_bad_id(id.to(Device::cpu()).to_vector<I>()[0], V, k);
    }
  });
}

void embedding_backward_cuda(const Tensor& dout, const Tensor& ids, int64_t padding_idx,
                             const Tensor& dweight) {
  IRIS_CHECK(dout.is_contiguous() && ids.is_contiguous() && dweight.is_contiguous(),
             "embedding_backward: cuda expects dense dout, ids and dweight, got ", dout.desc(),
             ", ", ids.desc(), ", ", dweight.desc());
  const int64_t V = dweight.size(0), D = dweight.size(1), n = ids.numel();
  if (V == 0 || D == 0) return;
  // Stable counting sort of the positions by id: bucket v is order[start[v] .. start[v+1]).
  std::vector<int64_t> start(V + 1, 0), order(n);
  dispatch_index(ids.dtype(), "embedding_backward", [&]<class I>() {
    const std::vector<I> host = ids.to(Device::cpu()).template to_vector<I>();
    for (int64_t k = 0; k < n; ++k) {
      const int64_t id = static_cast<int64_t>(host[k]);
      if (id < 0 || id >= V) fail_bad_id(id, V, k);
      ++start[id + 1];
    }
    for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t k = 0; k < n; ++k) order[next[static_cast<int64_t>(host[k])]++] = k;
  });
  const Tensor d_start = Tensor::from_vector(start, {V + 1}, dweight.device());
  const Tensor d_order = Tensor::from_vector(order, {n}, dweight.device());
  const int64_t row_blocks =
      std::min((V + Tr::kRowsPerBlock - 1) / Tr::kRowsPerBlock, Tr::kMaxRowBlocks);
  const int64_t col_blocks = (D + Tr::kColThreads - 1) / Tr::kColThreads;
  IRIS_CHECK(col_blocks <= 65535, "embedding_backward: embedding dim ", D, " too large");
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(col_blocks));
  ops::dispatch_float_or_half(dweight.dtype(), "embedding_backward", [&]<class T>() {
    IRIS_LAUNCH(embedding_backward_kernel<T>, grid, dim3(Tr::kColThreads, Tr::kRowsPerBlock), 0,
                nullptr, static_cast<const T*>(dout.raw_data()),
                static_cast<const int64_t*>(d_start.raw_data()),
                static_cast<const int64_t*>(d_order.raw_data()), V, D, padding_idx,
                static_cast<T*>(dweight.raw_data()));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(embedding_forward, CUDA, embedding_forward_cuda);
IRIS_REGISTER_KERNEL(embedding_backward, CUDA, embedding_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
