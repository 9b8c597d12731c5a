// Warp-level test kernels: shuffles (all modes, widths, 64-bit and struct
// payloads, inside divergent code), votes, __activemask, matches, reductions.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void shuffle_probe_kernel(int* out, int mode, int arg, int width) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int v = static_cast<int>(threadIdx.x) * 10 + 7;
  int r = 0;
  switch (mode) {
    case 0:
      r = __shfl_sync(kFull, v, lane * 7 + arg, width);
      break;
    case 1:
      r = __shfl_up_sync(kFull, v, static_cast<unsigned>(arg), width);
      break;
    case 2:
      r = __shfl_down_sync(kFull, v, static_cast<unsigned>(arg), width);
      break;
    default:
      r = __shfl_xor_sync(kFull, v, arg, width);
      break;
  }
  out[threadIdx.x] = r;
}

__global__ void shuffle_wide_kernel(const double* in_d, const long long* in_ll, double* out_d,
                                    long long* out_ll) {
  double d = in_d[threadIdx.x];
  long long ll = in_ll[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) {
    d += __shfl_xor_sync(kFull, d, offset);
    ll += __shfl_xor_sync(kFull, ll, offset);
  }
  if (threadIdx.x % 32 == 0) {
    out_d[threadIdx.x / 32] = d;
    out_ll[threadIdx.x / 32] = ll;
  }
}

__global__ void shuffle_struct_kernel(const ShufflePayload* in, ShufflePayload* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const ShufflePayload mine = in[threadIdx.x];
  out[threadIdx.x] = __shfl_sync(kFull, mine, (lane + 5) % 32);
}

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFull, v, offset);
  return v;
}

__global__ void warp_block_sum_kernel(const float* in, int n, float* out_total,
                                      float* out_half_warp_sums) {
  IRIS_SHARED(float, partial, [32]);
  const int t = static_cast<int>(threadIdx.x);
  const int lane = t % 32, warp = t / 32;
  const int nwarps = static_cast<int>(blockDim.x) / 32;
  const float v = t < n ? in[t] : 0.0f;
  const float s = warp_sum(v);
  if (lane == 0) partial[warp] = s;
  // Lanes 0..15 of every warp: a reduction over a 16-lane mask.
  if (lane < 16) {
    float h = v;
    for (int offset = 8; offset > 0; offset /= 2) h += __shfl_down_sync(0x0000ffffu, h, offset);
    if (lane == 0) out_half_warp_sums[warp] = h;
  }
  __syncthreads();
  if (warp == 0) {
    float p = lane < nwarps ? static_cast<float>(partial[lane]) : 0.0f;
    p = warp_sum(p);
    if (lane == 0) *out_total = p;
  }
}

__global__ void warp_votes_kernel(unsigned* out) {
  const int t = static_cast<int>(threadIdx.x);
  const int lane = t % 32, warp = t / 32;
  unsigned* o = out + 8 * warp;
  // The lanes that exist (a partial last warp has fewer): every vote names exactly them.
  const unsigned active = __activemask();
  const unsigned ballot = __ballot_sync(active, lane % 3 == 0);
  const int all = __all_sync(active, t >= 0);
  const int any = __any_sync(active, lane == 17);
  if (lane < 20) {
    const unsigned inner = __activemask();
    if (lane == 0) o[4] = inner;
  }
  const unsigned match = __match_any_sync(active, lane % 4);
  const unsigned sum = __reduce_add_sync(active, static_cast<unsigned>(lane));
  const unsigned mx = __reduce_max_sync(active, static_cast<unsigned>(lane * 3 % 7));
  if (lane == 6) {
    o[0] = ballot;
    o[1] = static_cast<unsigned>(all);
    o[2] = static_cast<unsigned>(any);
    o[3] = active;
    o[5] = match;
    o[6] = sum;
    o[7] = mx;
  }
}

// Lanes reduce 64 values in shared memory; __syncwarp orders each step.
__global__ void warp_sync_reduce_kernel(const int* in, int* out) {
  IRIS_SHARED(int, s, [64]);
  const int lane = static_cast<int>(threadIdx.x);
  s[lane] = in[lane];
  s[lane + 32] = in[lane + 32];
  __syncwarp();
  for (int half = 32; half > 0; half /= 2) {
    int v = 0;
    if (lane < half) v = s[lane] + s[lane + half];
    __syncwarp();
    if (lane < half) s[lane] = v;
    __syncwarp();
  }
  if (lane == 0) *out = s[0];
}

}  // namespace

void shuffle_probe(int* out, int threads, ShuffleMode mode, int arg, int width) {
  IRIS_LAUNCH(shuffle_probe_kernel, 1, threads, 0, 0, out, static_cast<int>(mode), arg, width);
}

void shuffle_wide(const double* in_d, const long long* in_ll, double* out_d, long long* out_ll,
                  int threads) {
  IRIS_LAUNCH(shuffle_wide_kernel, 1, threads, 0, 0, in_d, in_ll, out_d, out_ll);
}

void shuffle_struct(const ShufflePayload* in, ShufflePayload* out, int threads) {
  IRIS_LAUNCH(shuffle_struct_kernel, 1, threads, 0, 0, in, out);
}

void warp_block_sum(const float* in, int n, float* out_total, float* out_half_warp_sums) {
  IRIS_LAUNCH(warp_block_sum_kernel, 1, 256, 0, 0, in, n, out_total, out_half_warp_sums);
}

void warp_votes(unsigned* out, int threads) {
  IRIS_LAUNCH(warp_votes_kernel, 1, threads, 0, 0, out);
}

void warp_sync_reduce(const int* in, int* out) {
  IRIS_LAUNCH(warp_sync_reduce_kernel, 1, 32, 0, 0, in, out);
}

}  // namespace iris::emu_test
