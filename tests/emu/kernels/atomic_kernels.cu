// Atomics from many blocks (which the emulator runs on several OS threads at
// once) on global memory, and block-local atomics on shared memory.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr int kSharedBins = 16;

__global__ void histogram_kernel(const int* values, int n, unsigned* bins) {
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += stride)
    atomicAdd(&bins[values[i]], 1u);
}

__global__ void histogram_shared_kernel(const int* values, int n, unsigned* bins) {
  IRIS_SHARED(unsigned, local, [kSharedBins]);
  const int t = static_cast<int>(threadIdx.x);
  if (t < kSharedBins) local[t] = 0;
  __syncthreads();
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x) + t; i < n; i += stride)
    atomicAdd(&local[values[i]], 1u);
  __syncthreads();
  if (t < kSharedBins) atomicAdd(&bins[t], static_cast<unsigned>(local[t]));
}

// A float max through atomicCAS on the bit pattern (the usual idiom).
__device__ float atomic_max_float(float* address, float value) {
  int* bits = reinterpret_cast<int*>(address);
  int old = atomicOr(bits, 0);  // an atomic load: other blocks run concurrently
  while (__int_as_float(old) < value) {
    const int assumed = old;
    old = atomicCAS(bits, assumed, __float_as_int(value));
    if (old == assumed) break;
  }
  return __int_as_float(old);
}

__global__ void atomic_mix_kernel(const float* values, int n, AtomicResults* out, int* exch_prev) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  const float v = values[i];
  atomicAdd(&out->fsum, v);
  atomicAdd(&out->dsum, static_cast<double>(v));
  atomicMax(&out->imax, static_cast<int>(v));
  atomicMin(&out->imin, static_cast<int>(v));
  atomicAdd(&out->usum, static_cast<unsigned long long>(i));
  atomic_max_float(&out->fmax_cas, v);
  atomicInc(&out->inc_wrap, 9u);  // counts 0..9 and wraps
  // Each exchange returns the previous token: every token is seen exactly once.
  exch_prev[i] = atomicExch(&out->exch_token, i + 1);
}

}  // namespace

void histogram(const int* values, int n, unsigned* bins, int nbins, int blocks, int threads) {
  (void)nbins;
  IRIS_LAUNCH(histogram_kernel, blocks, threads, 0, 0, values, n, bins);
}

void histogram_shared(const int* values, int n, unsigned* bins, int blocks, int threads) {
  IRIS_LAUNCH(histogram_shared_kernel, blocks, threads, 0, 0, values, n, bins);
}

void atomic_mix(const float* values, int n, AtomicResults* out, int* exch_prev, int blocks,
                int threads) {
  IRIS_LAUNCH(atomic_mix_kernel, blocks, threads, 0, 0, values, n, out, exch_prev);
}

}  // namespace iris::emu_test
