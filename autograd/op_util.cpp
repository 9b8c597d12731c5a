#include "autograd/op_util.h"

namespace iris::autograd {

Tensor dense(const Tensor& t) {
  if (!t.defined() || t.is_contiguous()) return t;
  return t.detach().contiguous();
}

Tensor view_dense(const Tensor& t, const Shape& shape) {
  return t.as_strided(shape, contiguous_strides(shape), t.offset());
}

Tensor broadcast_raw(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const int64_t lead = static_cast<int64_t>(shape.size()) - t.dim();
  Shape strides(shape.size(), 0);
  for (int64_t d = 0; d < t.dim(); ++d)
    strides[lead + d] = t.size(d) == 1 && shape[lead + d] != 1 ? 0 : t.stride(d);
  return t.as_strided(shape, strides, t.offset());
}

void check_float_input(const char* op, const Tensor& x) {
  IRIS_CHECK(x.defined(), op, ": undefined input");
  IRIS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, op,
             ": expected a float32 or float64 input, got ", x.desc());
}

}  // namespace iris::autograd
