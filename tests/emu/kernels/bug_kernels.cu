// Planted bugs. Each kernel is valid CUDA (nvcc compiles it) and wrong in one
// way that the GPU would punish with a hang, a race or garbage; the emulator
// must report each as an iris::Error naming the kernel and the call sites.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void early_exit_barrier_kernel(int* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void divergent_barrier_sites_kernel(int* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void missing_barrier_kernel(const int* in, int* out, int n) {
  IRIS_SHARED(int, buf, [64]);
  const int t = static_cast<int>(threadIdx.x);
  buf[t] = in[t];
  out[t] = buf[(t + 1) % n];  // needs a __syncthreads before it
}

__global__ void write_after_read_kernel(int* out, int n) {
  IRIS_SHARED(int, buf, [64]);
  const int t = static_cast<int>(threadIdx.x);
  int acc = 0;
  for (int round = 0; round < 2; ++round) {
    buf[t] = round * 100 + t;
    __syncthreads();
    acc += buf[(t + 1) % n];
    // missing __syncthreads: the next round overwrites what a neighbour may still read
  }
  out[t] = acc;
}

// The pre-Volta idiom: relies on the warp running in lockstep, no __syncwarp.
__global__ void warp_lockstep_kernel(const int* in, int* out) {
  IRIS_SHARED(int, s, [64]);
  const int t = static_cast<int>(threadIdx.x);
  s[t] = in[t];
  s[t + 32] = in[t + 32];
  __syncwarp();
  for (int half = 32; half > 0; half /= 2) {
    if (t < half) s[t] += s[t + half];
  }
  if (t == 0) *out = s[0];
}

__global__ void shared_index_oob_kernel(int* out) {
  IRIS_SHARED(int, buf, [32]);
  const int t = static_cast<int>(threadIdx.x);
  buf[t] = t;  // blockDim.x is 33
  __syncthreads();
  out[t] = buf[t % 32];
}

__global__ void shared_raw_pointer_oob_kernel(int* out) {
  IRIS_SHARED(int, buf, [32]);
  int* raw = &buf[0];  // a raw pointer: unchecked until the guard bytes are verified
  const int t = static_cast<int>(threadIdx.x);
  raw[t] = t;  // blockDim.x is 40
  __syncthreads();
  out[t] = t;
}

__global__ void dynamic_oob_kernel(int* out, int n) {
  IRIS_DYNAMIC_SHARED(int, buf);
  const int t = static_cast<int>(threadIdx.x);
  buf[t + 1] = t;  // the launch provides n ints, thread n - 1 writes index n
  __syncthreads();
  if (t < n) out[t] = 1;
}

__global__ void missing_cp_async_wait_kernel(const float* in, float* out) {
  IRIS_SHARED(float, buf, [128]);
  const int t = static_cast<int>(threadIdx.x);
  iris::ptx::cp_async_16(&buf[4 * t], in + 4 * t);
  iris::ptx::cp_async_commit();
  __syncthreads();  // no cp_async_wait: the data has not landed
  out[t] = buf[(4 * t + 4) % 128];
}

__global__ void shuffle_exited_lane_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(kFull, lane, 1);
}

__global__ void collective_vs_barrier_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  int v = lane;
  if (lane < 16) {
    __syncthreads();
  } else {
    v = __shfl_sync(kFull, v, 0);
  }
  out[threadIdx.x] = v;
}

__global__ void shuffle_source_outside_mask_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  int v = lane;
  if (lane < 16) v = __shfl_sync(0x0000ffffu, v, lane + 16, 32);
  out[threadIdx.x] = v;
}

__global__ void shuffle_bad_width_kernel(int* out, int width) {
  out[threadIdx.x] = __shfl_down_sync(kFull, static_cast<int>(threadIdx.x), 1u, width);
}

__global__ void mask_without_caller_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  out[threadIdx.x] = static_cast<int>(__ballot_sync(0x0000ffffu, lane > 3));
}

__global__ void device_check_kernel(int* out, int n) {
  const int t = static_cast<int>(threadIdx.x);
  IRIS_DEVICE_CHECK(t != n, "thread index must differ from n");
  out[t] = t;
}

__global__ void ldmatrix_misaligned_kernel(const uint16_t* tile, uint32_t* out) {
  IRIS_SHARED(uint16_t, rows, [32][8]);
  const int lane = static_cast<int>(threadIdx.x);
  for (int c = 0; c < 8; ++c) rows[lane][c] = tile[lane * 8 + c];
  __syncwarp();
  uint32_t r[1];
  iris::ptx::ldmatrix_x1(r, &rows[lane % 8][lane == 3 ? 4 : 0]);  // lane 3: 8 bytes off
  out[lane] = r[0];
}

__global__ void misaligned_vector_kernel(float* out) {
  IRIS_SHARED(float, tile, [64]);
  const int t = static_cast<int>(threadIdx.x);
  *iris::ptr_cast<float4>(&tile[4 * t + 1]) = make_float4(1.0f, 2.0f, 3.0f, 4.0f);
  __syncthreads();
  out[t] = tile[t];
}

__global__ void shared_pointer_oob_kernel(float* out) {
  IRIS_SHARED(float, tile, [32]);
  iris::smem_ptr<float> p = &tile[static_cast<int>(threadIdx.x)];
  p[1] = 1.0f;  // thread 31 writes tile[32]
  __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}

}  // namespace

void bug_early_exit_barrier(int* out) { IRIS_LAUNCH(early_exit_barrier_kernel, 1, 32, 0, 0, out); }
void bug_divergent_barrier_sites(int* out) {
  IRIS_LAUNCH(divergent_barrier_sites_kernel, 1, 64, 0, 0, out);
}
void bug_missing_barrier(const int* in, int* out, int n) {
  IRIS_LAUNCH(missing_barrier_kernel, 1, n, 0, 0, in, out, n);
}
void bug_write_after_read(int* out, int n) {
  IRIS_LAUNCH(write_after_read_kernel, 1, n, 0, 0, out, n);
}
void bug_warp_lockstep(const int* in, int* out) {
  IRIS_LAUNCH(warp_lockstep_kernel, 1, 32, 0, 0, in, out);
}
void bug_shared_index_oob(int* out, int threads) {
  IRIS_LAUNCH(shared_index_oob_kernel, 1, threads, 0, 0, out);
}
void bug_shared_raw_pointer_oob(int* out, int threads) {
  IRIS_LAUNCH(shared_raw_pointer_oob_kernel, 1, threads, 0, 0, out);
}
void bug_dynamic_oob(int* out, int n) {
  IRIS_LAUNCH(dynamic_oob_kernel, 1, n, n * sizeof(int), 0, out, n);
}
void bug_missing_cp_async_wait(const float* in, float* out) {
  IRIS_LAUNCH(missing_cp_async_wait_kernel, 1, 32, 0, 0, in, out);
}
void bug_shuffle_exited_lane(int* out) {
  IRIS_LAUNCH(shuffle_exited_lane_kernel, 1, 32, 0, 0, out);
}
void bug_collective_vs_barrier(int* out) {
  IRIS_LAUNCH(collective_vs_barrier_kernel, 1, 32, 0, 0, out);
}
void bug_shuffle_source_outside_mask(int* out) {
  IRIS_LAUNCH(shuffle_source_outside_mask_kernel, 1, 32, 0, 0, out);
}
void bug_shuffle_bad_width(int* out) {
  IRIS_LAUNCH(shuffle_bad_width_kernel, 1, 32, 0, 0, out, 12);
}
void bug_mask_without_caller(int* out) {
  IRIS_LAUNCH(mask_without_caller_kernel, 1, 32, 0, 0, out);
}
void bug_device_check(int* out, int n) { IRIS_LAUNCH(device_check_kernel, 1, 32, 0, 0, out, n); }
void bug_misaligned_vector(float* out) { IRIS_LAUNCH(misaligned_vector_kernel, 1, 8, 0, 0, out); }
void bug_shared_pointer_oob(float* out) {
  IRIS_LAUNCH(shared_pointer_oob_kernel, 1, 32, 0, 0, out);
}
void bug_ldmatrix_misaligned(const uint16_t* tile, uint32_t* out) {
  IRIS_LAUNCH(ldmatrix_misaligned_kernel, 1, 32, 0, 0, tile, out);
}

}  // namespace iris::emu_test
