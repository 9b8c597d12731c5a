// CUDA dropout: the Philox keep mask of kernels/dropout.h, bit for bit the CPU's.
// One thread per Philox block (four consecutive stream elements): the block is
// computed once and its (up to) four words decide the elements it covers. bf16/f16 multiply
// in float by the float scale and round once, as on the CPU.
#include <cmath>
#include <cstdint>

#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/dropout.h"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct DropoutTraits {
  static constexpr int kThreads = 256;
  static constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this
  static constexpr int kWordsPerBlock = 4;     // Philox 4x32: four stream elements per block
  static_assert(kThreads % 32 == 0 && kWordsPerBlock == 4);
};
using Tr = DropoutTraits;

// Philox block q (stream elements 4q .. 4q+3) covers x indices 4q - offset + w.
template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    dropout_kernel(const T* x, T* out, int64_t n, uint32_t threshold, ops::compute_t<T> scale,
                   uint64_t seed, uint64_t offset, uint64_t first_block, uint64_t num_blocks) {
  for (uint64_t q = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < num_blocks;
       q += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t blk = first_block + q;
    const philox::U32x4 r = philox::block(seed, blk);
    for (int w = 0; w < Tr::kWordsPerBlock; ++w) {
      const uint64_t k = blk * Tr::kWordsPerBlock + static_cast<uint64_t>(w);  // stream index
      if (k < offset) continue;
      const uint64_t i = k - offset;
      if (i >= static_cast<uint64_t>(n)) break;
      const bool keep = (r.v[w] >> 8) >= threshold;
      const ops::compute_t<T> v = ops::load_compute(x[i]);  // read before write: out may alias x
      out[i] = ops::store_compute<T>(v * (keep ? scale : ops::compute_t<T>(0)));
    }
  }
}

void dropout_apply_cuda(const Tensor& x, double p, uint64_t seed, uint64_t offset,
                        const Tensor& out) {
  IRIS_CHECK(x.is_contiguous() && out.is_contiguous() && x.numel() == out.numel(),
             "dropout: cuda expects dense x and out of one size, got ", x.desc(), " and ",
             out.desc());
  IRIS_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got ", p);
  const int64_t n = x.numel();
  if (n == 0) return;
  // uniform = (bits >> 8) * 2^-24 >= p  <=>  (bits >> 8) >= ceil(p * 2^24) (exact in double).
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(p * 16777216.0));
  const uint64_t first_block = offset / Tr::kWordsPerBlock;
  const uint64_t last_block = (offset + static_cast<uint64_t>(n) - 1) / Tr::kWordsPerBlock;
  const uint64_t num_blocks = last_block - first_block + 1;
  const uint64_t want = (num_blocks + Tr::kThreads - 1) / Tr::kThreads;
  const dim3 grid(static_cast<unsigned>(
      want < static_cast<uint64_t>(Tr::kMaxBlocks) ? want : static_cast<uint64_t>(Tr::kMaxBlocks)));
  ops::dispatch_float_or_half(x.dtype(), "dropout", [&]<class T>() {
    using A = ops::compute_t<T>;
    const A scale = p < 1 ? static_cast<A>(1.0 / (1.0 - p)) : A(0);
    IRIS_LAUNCH(dropout_kernel<T>, grid, dim3(Tr::kThreads), 0, nullptr,
                static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), n, threshold,
                scale, seed, offset, first_block, num_blocks);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(dropout_apply, CUDA, dropout_apply_cuda);

}  // namespace iris::IRIS_KERNEL_NS
