#pragma once
// Indexing and joining kernels: cat, index_select / index_add, gather / scatter_add.
// Inputs are dense row-major (the op layer makes them so) and index tensors are int64
// already checked to lie in range; outputs are dense.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// out = the inputs laid end to end along `dim` (any dtype; every input has out's shape except
// along dim).
IRIS_DECLARE_KERNEL(cat, void(const std::vector<Tensor>& inputs, int64_t dim, const Tensor& out));
// out[.., k, ..] = x[.., index[k], ..] along dim (index 1-D).
IRIS_DECLARE_KERNEL(index_select,
                    void(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out));
// out[.., index[k], ..] += src[.., k, ..] along dim, in increasing k for every element
// (deterministic: repeated indices accumulate in order).
IRIS_DECLARE_KERNEL(index_add,
                    void(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src));
// out[i][j][k] = x[i][index[i][j][k]][k] (dim 1 shown); out has index's shape.
IRIS_DECLARE_KERNEL(gather,
                    void(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out));
// out[i][index[i][j][k]][k] += src[i][j][k] (dim 1 shown) for every position of index; src may
// be larger than index in any dim. Deterministic: each fibre along dim is summed in order.
IRIS_DECLARE_KERNEL(scatter_add,
                    void(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src));
// Throws iris::Error naming `op` and the first (lowest position) index outside [0, limit).
IRIS_DECLARE_KERNEL(check_index_range, void(const char* op, const Tensor& index, int64_t limit,
                                            const Tensor& x, int64_t dim));

}  // namespace iris::kernels
