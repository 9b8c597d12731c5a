// cp.async test kernels: a double-buffered global -> shared pipeline (copy
// tile k+1 while computing on tile k) and the 4/8-byte forms.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr int kSmallMaxThreads = 128;

__device__ void issue_tile(iris::smem_ptr<float> stage_row, const float* in, int n, int tile) {
  const int t = static_cast<int>(threadIdx.x);
  const int idx = tile * CopyTraits::kTileFloats + 4 * t;
  const int remaining = n - idx;
  const int bytes = remaining >= 4 ? 16 : (remaining > 0 ? remaining * 4 : 0);
  // Past the end of the input the copy reads nothing and zero-fills.
  iris::ptx::cp_async_16_zfill(stage_row + 4 * t, in + (bytes > 0 ? idx : 0), bytes);
}

__global__ void pipelined_copy_kernel(const float* in, float* out, int n) {
  using Tr = CopyTraits;
  IRIS_SHARED(float, stage, [2][Tr::kTileFloats]);
  const int t = static_cast<int>(threadIdx.x);
  const int ntiles = (n + Tr::kTileFloats - 1) / Tr::kTileFloats;
  const int step = static_cast<int>(gridDim.x);
  int tile = static_cast<int>(blockIdx.x);
  if (tile < ntiles) issue_tile(stage[0], in, n, tile);
  iris::ptx::cp_async_commit();
  for (int k = 0; tile < ntiles; tile += step, ++k) {
    if (tile + step < ntiles) issue_tile(stage[(k + 1) % 2], in, n, tile + step);
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait<1>();  // every group but the newest: tile `tile` has landed
    __syncthreads();                // ... for every thread of the block
    const int base = tile * Tr::kTileFloats;
    for (int j = t; j < Tr::kTileFloats; j += static_cast<int>(blockDim.x)) {
      if (base + j < n) out[base + j] = 2.0f * stage[k % 2][j] + 1.0f;
    }
    __syncthreads();  // the buffer is refilled next iteration
  }
  iris::ptx::cp_async_wait_all();
}

__global__ void small_async_copy_kernel(const float* in, float* out) {
  IRIS_SHARED(float, pairs, [2 * kSmallMaxThreads]);
  IRIS_SHARED(float, singles, [kSmallMaxThreads]);
  const int t = static_cast<int>(threadIdx.x);
  const int threads = static_cast<int>(blockDim.x);
  iris::ptx::cp_async_8(&pairs[2 * t], in + 2 * t);
  iris::ptx::cp_async_4(&singles[t], in + 2 * threads + t);
  iris::ptx::cp_async_wait_all();
  __syncthreads();
  const int o = (t + 1) % threads;  // another thread's data
  out[2 * o] = pairs[2 * o];
  out[2 * o + 1] = pairs[2 * o + 1];
  out[2 * threads + o] = singles[o];
}

}  // namespace

void pipelined_copy(const float* in, float* out, int n, int blocks) {
  IRIS_LAUNCH(pipelined_copy_kernel, blocks, CopyTraits::kThreads, 0, 0, in, out, n);
}

void small_async_copy(const float* in, float* out, int threads) {
  IRIS_LAUNCH(small_async_copy_kernel, 1, threads, 0, 0, in, out);
}

}  // namespace iris::emu_test
