// The shared-memory access forms kernels use, compiled both ways: float4
// stores and loads through iris::ptr_cast, shared rows passed to a device
// helper as iris::smem_ptr<const float>, bf16 elements read as float, shared
// atomics and compound assignments.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr int kRows = SharedFormsTraits::kRows, kCols = SharedFormsTraits::kCols;

__device__ float sum_row(iris::smem_ptr<const float> row, int n) {
  float s = 0.0f;
  for (iris::smem_ptr<const float> p = row; p < row + n; ++p) s += *p;
  return s;
}

__global__ void shared_forms_kernel(const float* in, float* out) {
  IRIS_SHARED(float, tile, [kRows][kCols]);
  IRIS_SHARED(__nv_bfloat16, btile, [kRows][kCols]);
  IRIS_SHARED(int, counters, [kRows]);
  const int t = static_cast<int>(threadIdx.x);
  const int r = t / (kCols / 4), c = (t % (kCols / 4)) * 4;
  const float4 v = reinterpret_cast<const float4*>(in)[t];
  *iris::ptr_cast<float4>(&tile[r][c]) = v;
  btile[r][c] = __float2bfloat16(v.x);
  btile[r][c + 1] = __float2bfloat16(v.y);
  btile[r][c + 2] = __float2bfloat16(v.z);
  btile[r][c + 3] = __float2bfloat16(v.w);
  if (t < kRows) counters[t] = 0;
  __syncthreads();
  atomicAdd(&counters[r], 1);
  const int other = (r + 1) % kRows;
  const float row_sum = sum_row(tile[other], kCols);
  const float b = btile[other][c];
  __syncthreads();
  tile[r][c] += b;
  tile[r][c + 1] *= 2.0f;
  ++tile[r][c + 2];
  tile[r][c + 3] -= row_sum;
  __syncthreads();
  float4 w = *iris::ptr_cast<float4>(&tile[r][c]);
  w.w += static_cast<float>(counters[r]);
  reinterpret_cast<float4*>(out)[t] = w;
}

}  // namespace

void shared_forms(const float* in, float* out) {
  IRIS_LAUNCH(shared_forms_kernel, 1, SharedFormsTraits::kThreads, 0, 0, in, out);
}

}  // namespace iris::emu_test
