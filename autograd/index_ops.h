#pragma once
// Indexing and joining ops (PyTorch semantics): cat, stack, split, chunk,
// index_select, index_add, gather, scatter_add. Index tensors are int64; an
// index outside [0, size) is an iris::Error naming the op and the index.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace iris {

// Joins tensors of one dtype and device along an existing dim; shapes must match elsewhere.
// As in PyTorch, 1-D empty tensors (shape [0]) are skipped.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Joins equally shaped tensors along a new dim (dim in [-(ndim+1), ndim]).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// Views of x: pieces of split_size along dim (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
// Views of x with the given sizes along dim (they must sum to x.size(dim)).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes,
                                     int64_t dim = 0);
// At most `chunks` views of size ceil(x.size(dim) / chunks) along dim.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// out[.., k, ..] = x[.., index[k], ..]; index is int64 with at most one dim.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out = x, then out[.., index[k], ..] += source[.., k, ..] (repeated indices accumulate).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source);
// out[i][j][k] = x[i][index[i][j][k]][k] (dim = 1); index has x's number of dims and
// index.size(d) <= x.size(d) for d != dim. Differentiable in x.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// out = x, then out[i][index[i][j][k]][k] += src[i][j][k] (dim = 1) over index's positions;
// index.size(d) <= src.size(d) for every d and <= x.size(d) for d != dim.
// Differentiable in x and src.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace iris
