#pragma once
// Reductions over any set of dims, and scans.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

enum class ReduceOp : uint8_t { sum, mean, max, min, argmax, argmin, var };
const char* reduce_name(ReduceOp op);

// out has x's shape with every dim in `dims` set to 1 (keepdim form); `dims`
// are sorted and unique. var uses `correction` (1 = unbiased). argmax/argmin
// write int64 indices into the single reduced dim (first occurrence wins; NaN
// counts as the largest value, as in PyTorch).
IRIS_DECLARE_KERNEL(reduce, void(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
                                 const Tensor& out, int64_t correction));
// out = inclusive prefix sum of x along dim (out dense, x's shape).
IRIS_DECLARE_KERNEL(cumsum, void(const Tensor& x, int64_t dim, const Tensor& out));

}  // namespace iris::kernels
