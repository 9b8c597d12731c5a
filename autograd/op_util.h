#pragma once
// Small helpers every op file shares: layouts for kernels, without recording.
#include "core/tensor.h"

namespace iris::autograd {

// A dense row-major alias (t itself) or copy of t that the tape does not see; the
// calling op records its own node. Undefined stays undefined.
Tensor dense(const Tensor& t);
// A dense tensor viewed with `shape` (same element count); not recorded.
Tensor view_dense(const Tensor& t, const Shape& shape);
// t broadcast to `shape` as a view (stride 0 on expanded dims); not recorded.
Tensor broadcast_raw(const Tensor& t, const Shape& shape);
// Throws unless x is a defined float32/float64 tensor (what the CPU kernels compute in).
void check_float_input(const char* op, const Tensor& x);

}  // namespace iris::autograd
