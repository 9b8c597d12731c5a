#pragma once
// Matrix products.
#include "core/tensor.h"

namespace iris {

// numpy/PyTorch matmul: 1-D operands are promoted and the added dim removed; batch dims
// broadcast. A 2-D right operand folds the left operand's batch into one GEMM.
Tensor matmul(const Tensor& a, const Tensor& b);
// [B, M, K] @ [B, K, N]
Tensor bmm(const Tensor& a, const Tensor& b);
// x [..., in] @ weight[out, in]^T + bias[out] (bias may be undefined), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace iris
