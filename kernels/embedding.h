#pragma once
// Embedding gather and its deterministic scatter-add backward (any device).
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// out[k, :] = weight[ids[k], :] for the n = ids.numel() ids (int64 or int32,
// dense); weight [V, D] dense; out [n, D]. An id outside [0, V) throws, naming it and V.
IRIS_DECLARE_KERNEL(embedding_forward,
                    void(const Tensor& weight, const Tensor& ids, const Tensor& out));
// dweight [V, D] (written whole) = for each row v, the sum of dout[k, :] over the
// k with ids[k] == v, added in increasing k (the same bits for any thread count);
// row padding_idx (when >= 0) stays zero. dout [n, D] dense.
IRIS_DECLARE_KERNEL(embedding_backward, void(const Tensor& dout, const Tensor& ids,
                                             int64_t padding_idx, const Tensor& dweight));

}  // namespace iris::kernels
