#pragma once
// Matrix products (any device).
#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// out[i] = alpha * a[i] @ b[i] + beta * out[i] for a [B, M, K], b [B, K, N], out [B, M, N]
// (dense). a and b may be views: each matrix needs unit stride in one of its last two dims
// (row-major or transposed); batch stride 0 broadcasts one matrix. beta = 0 ignores out.
IRIS_DECLARE_KERNEL(batched_gemm, void(const Tensor& a, const Tensor& b, const Tensor& out,
                                       double alpha, double beta));

}  // namespace iris::kernels
