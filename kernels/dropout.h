#pragma once
// Dropout's mask rule, shared bit for bit by every backend: element i of a
// tensor is kept iff philox::uniform(seed, offset + i) >= p, compared exactly
// (equivalently (philox::bits(seed, offset + i) >> 8) >= ceil(p * 2^24)).
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// out[i] = x[i] * (kept ? 1 / (1 - p) : 0), with the scale in x's dtype for float32/float64
// and in float32 for bf16/f16 (as PyTorch; the product is rounded once) (0 when p == 1). x and out
// dense, same shape; out may alias x. Used for the forward (x) and the backward (dy) alike.
IRIS_DECLARE_KERNEL(dropout_apply, void(const Tensor& x, double p, uint64_t seed, uint64_t offset,
                                        const Tensor& out));

}  // namespace iris::kernels
