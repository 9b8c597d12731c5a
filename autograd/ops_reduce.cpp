// Reductions and scans with their derivatives.
#include <algorithm>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace iris {

using autograd::BackwardCtx;
using autograd::Saved;
using kernels::ReduceOp;

namespace {

std::vector<int64_t> normalize_dims(const char* op, std::vector<int64_t> dims, int64_t ndim) {
  if (dims.empty())
    for (int64_t d = 0; d < ndim; ++d) dims.push_back(d);
  for (int64_t& d : dims) d = wrap_dim(d, ndim, op);
  std::sort(dims.begin(), dims.end());
  IRIS_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), op,
             ": a dim appears twice");
  return dims;
}

Shape keepdim_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape k = s;
  for (int64_t d : dims) k[d] = 1;
  return k;
}

Shape dropdim_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape k;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) k.push_back(s[d]);
  return k;
}

// Runs the kernel into a keepdim-shaped result, then views it without the dims.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                  int64_t correction = 0) {
  const bool arg = op == ReduceOp::argmax || op == ReduceOp::argmin;
  const Shape ks = keepdim_shape(x.shape(), dims);
  Tensor out = Tensor::empty(ks, arg ? DType::i64 : x.dtype(), x.device());
  kernels::reduce_table().get(x.device())(op, x, dims, out, correction);
  if (keepdim) return out;
  const Shape ds = dropdim_shape(x.shape(), dims);
  return out.as_strided(ds, contiguous_strides(ds), 0);
}

// The gradient of a reduced tensor, broadcast back to the input's shape (a view).
Tensor expand_back(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& dims) {
  return g.reshape(keepdim_shape(x_shape, dims)).expand(x_shape);
}

int64_t reduced_count(const Shape& s, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= s[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  dims = normalize_dims("sum", std::move(dims), x.dim());
  Tensor out = reduce_raw(ReduceOp::sum, x, dims, keepdim);
  if (autograd::any_requires_grad({&x}))
    autograd::record("sum", {x}, {out}, [s = x.shape(), dims](const BackwardCtx& c) {
      return std::vector<Tensor>{expand_back(c.grad(), s, dims)};
    });
  return out;
}

Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  dims = normalize_dims("mean", std::move(dims), x.dim());
  Tensor out = reduce_raw(ReduceOp::mean, x, dims, keepdim);
  if (autograd::any_requires_grad({&x}))
    autograd::record("mean", {x}, {out}, [s = x.shape(), dims](const BackwardCtx& c) {
      const double n = static_cast<double>(reduced_count(s, dims));
      // A 16-bit n is inexact (bf16 past 256): scale by the reciprocal, rounded once, instead.
      const DType dt = c.grad().dtype();
      const bool half = dt == DType::bf16 || dt == DType::f16;
      return std::vector<Tensor>{expand_back(half ? c.grad() * (1.0 / n) : c.grad() / n, s, dims)};
    });
  return out;
}

namespace {
Tensor extremum(ReduceOp op, const char* name, const Tensor& x, std::vector<int64_t> dims,
                bool keepdim) {
  dims = normalize_dims(name, std::move(dims), x.dim());
  Tensor out = reduce_raw(op, x, dims, keepdim);
  if (autograd::any_requires_grad({&x}))
    autograd::record(name, {x}, {out}, [X = Saved(x), O = Saved(out), dims](const BackwardCtx& c) {
      // Split evenly between tied extrema, as PyTorch's amax/amin do.
      const Tensor& x = X.get();
      const Tensor hit = eq(x, expand_back(O.get(), x.shape(), dims)).to(x.dtype());
      const Tensor count = sum(hit, dims, true);
      return std::vector<Tensor>{mul(expand_back(c.grad(), x.shape(), dims), div(hit, count))};
    });
  return out;
}
}  // namespace

Tensor amax(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return extremum(ReduceOp::max, "amax", x, std::move(dims), keepdim);
}
Tensor amin(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return extremum(ReduceOp::min, "amin", x, std::move(dims), keepdim);
}

Tensor var(const Tensor& x, std::vector<int64_t> dims, int64_t correction, bool keepdim) {
  dims = normalize_dims("var", std::move(dims), x.dim());
  Tensor out = reduce_raw(ReduceOp::var, x, dims, keepdim, correction);
  if (autograd::any_requires_grad({&x}))
    autograd::record("var", {x}, {out}, [X = Saved(x), dims, correction](const BackwardCtx& c) {
      const Tensor& x = X.get();
      const double n = static_cast<double>(reduced_count(x.shape(), dims) - correction);
      const Tensor centered = sub(x, mean(x, dims, true));
      return std::vector<Tensor>{
          mul(expand_back(c.grad(), x.shape(), dims), centered * (2.0 / n))};
    });
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_raw(ReduceOp::argmax, x, {wrap_dim(dim, x.dim(), "argmax")}, keepdim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_raw(ReduceOp::argmin, x, {wrap_dim(dim, x.dim(), "argmin")}, keepdim);
}

Tensor cumsum(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.dim() == 0) {
    copy_(out, x);
    return out;
  }
  kernels::cumsum_table().get(x.device())(x, dim, out);
  if (autograd::any_requires_grad({&x}))
    autograd::record("cumsum", {x}, {out}, [dim](const BackwardCtx& c) {
      // d/dx_i sum_{j>=i} g_j: a reversed cumulative sum = total - exclusive prefix.
      const Tensor& g = c.grad();
      const Tensor total = sum(g, {dim}, true);
      return std::vector<Tensor>{add(sub(total, cumsum(g, dim)), g)};
    });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  IRIS_CHECK(lead >= 0, "sum_to: cannot reduce ", x.desc(), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.size(d) != 1) {
      dims.push_back(d);
    } else {
      IRIS_CHECK(shape[d - lead] == x.size(d), "sum_to: cannot reduce ", x.desc(), " to ",
                 shape_str(shape));
    }
  }
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, true).reshape(shape);
}

}  // namespace iris
