// Block-level test kernels: shared-memory tree reduction, dynamic shared
// memory, barrier votes, thread/block indices, and the launch order probes.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

__global__ void block_sum_kernel(const float* in, int n, float* block_sums) {
  IRIS_SHARED(float, partial, [BlockTraits::kReduceThreads]);
  const int tid = static_cast<int>(threadIdx.x);
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  float sum = 0.0f;
  for (int i = static_cast<int>(blockIdx.x * blockDim.x) + tid; i < n; i += stride) sum += in[i];
  partial[tid] = sum;
  __syncthreads();
  for (int s = static_cast<int>(blockDim.x) / 2; s > 0; s >>= 1) {
    if (tid < s) partial[tid] += partial[tid + s];
    __syncthreads();
  }
  if (tid == 0) block_sums[blockIdx.x] = partial[0];
}

__global__ void block_reverse_kernel(const int* in, int* out, int n) {
  IRIS_DYNAMIC_SHARED(int, buf);
  const int t = static_cast<int>(threadIdx.x);
  const int base = static_cast<int>(blockIdx.x * blockDim.x);
  if (base + t < n) buf[t] = in[base + t];
  __syncthreads();
  const int count = min(static_cast<int>(blockDim.x), n - base);
  if (t < count) out[base + t] = buf[count - 1 - t];
}

__global__ void dynamic_carve_kernel(const float* in_f, const int* in_i, float* out, int n) {
  IRIS_DYNAMIC_SHARED(float, fbuf);
  iris::smem_ptr<int> ibuf = iris::ptr_cast<int>(fbuf + blockDim.x);
  const int t = static_cast<int>(threadIdx.x);
  const int i = static_cast<int>(blockIdx.x * blockDim.x) + t;
  if (i < n) {
    fbuf[t] = in_f[i];
    ibuf[t] = in_i[i];
  }
  __syncthreads();
  // Read the neighbour's values: only correct if both carve-outs are shared by the block.
  const int j = (t + 1) % static_cast<int>(blockDim.x);
  const int src = static_cast<int>(blockIdx.x * blockDim.x) + j;
  if (i < n && src < n) out[i] = fbuf[j] * 2.0f + static_cast<float>(ibuf[j]);
}

__global__ void barrier_votes_kernel(int* out) {
  const int t = static_cast<int>(threadIdx.x);
  const int count = __syncthreads_count(t % 3 == 0);
  const int all = __syncthreads_and(t < static_cast<int>(blockDim.x));
  const int any = __syncthreads_or(t == 5);
  if (t == 0) {
    out[3 * blockIdx.x + 0] = count;
    out[3 * blockIdx.x + 1] = all;
    out[3 * blockIdx.x + 2] = any;
  }
}

__global__ void thread_indices_kernel(uint32_t* out) {
  const uint32_t block_linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const uint32_t thread_linear =
      threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const uint32_t per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block_linear * per_block + thread_linear] = threadIdx.x | threadIdx.y << 4 |
                                                  threadIdx.z << 8 | blockIdx.x << 12 |
                                                  blockIdx.y << 16 | blockIdx.z << 20;
}

__global__ void shared_scalar_kernel(int* out, int value) {
  IRIS_SHARED(int, flag);
  if (threadIdx.x == 0) flag = value;
  __syncthreads();
  out[threadIdx.x] = flag;
}

__global__ void block_order_kernel(int* order, int* counter) {
  if (threadIdx.x == 0) order[blockIdx.x] = atomicAdd(counter, 1);
}

__global__ void thread_arrival_kernel(int* arrival, int* counter) {
  arrival[threadIdx.x] = atomicAdd(counter, 1);
}

}  // namespace

void block_sum(const float* in, int n, float* block_sums, int blocks) {
  IRIS_LAUNCH(block_sum_kernel, blocks, BlockTraits::kReduceThreads, 0, 0, in, n, block_sums);
}

void block_reverse(const int* in, int* out, int n, int threads) {
  const int blocks = (n + threads - 1) / threads;
  IRIS_LAUNCH(block_reverse_kernel, blocks, threads, threads * sizeof(int), 0, in, out, n);
}

void dynamic_carve(const float* in_f, const int* in_i, float* out, int n, int threads) {
  const int blocks = (n + threads - 1) / threads;
  IRIS_LAUNCH(dynamic_carve_kernel, blocks, threads, threads * (sizeof(float) + sizeof(int)), 0,
              in_f, in_i, out, n);
}

void barrier_votes(int* out, int blocks, int threads) {
  IRIS_LAUNCH(barrier_votes_kernel, blocks, threads, 0, 0, out);
}

void thread_indices(uint32_t* out, int gx, int gy, int gz, int bx, int by, int bz) {
  const dim3 grid(gx, gy, gz), block(bx, by, bz);
  IRIS_LAUNCH(thread_indices_kernel, grid, block, 0, 0, out);
}

void shared_scalar(int* out, int threads, int value) {
  IRIS_LAUNCH(shared_scalar_kernel, 1, threads, 0, 0, out, value);
}

void block_order(int* order, int* counter, int blocks) {
  IRIS_LAUNCH(block_order_kernel, blocks, 32, 0, 0, order, counter);
}

void thread_arrival(int* arrival, int* counter, int threads) {
  IRIS_LAUNCH(thread_arrival_kernel, 1, threads, 0, 0, arrival, counter);
}

}  // namespace iris::emu_test
