// Indexing and joining ops with their derivatives: cat / stack / split / chunk, and
// index_select / index_add / gather / scatter_add (each pair is the other's backward).
#include <algorithm>

#include "autograd/function.h"
#include "autograd/op_util.h"
#include "autograd/index_ops.h"
#include "autograd/ops.h"
#include "kernels/elementwise.h"
#include "kernels/index.h"

namespace iris {

using autograd::dense;

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

// A fresh dense copy of x that autograd does not see.
Tensor dense_copy(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::copy_table().get(x.device())(x, out);
  return out;
}

// PyTorch treats a 0-dim tensor as 1-D of size 1 when indexing.
int64_t dims_or_one(const Tensor& t) { return std::max<int64_t>(t.dim(), 1); }
int64_t size_or_one(const Tensor& t, int64_t d) { return t.dim() == 0 ? 1 : t.size(d); }

void check_operands(const char* op, const Tensor& x, const Tensor& index) {
  IRIS_CHECK(x.defined(), op, ": undefined input");
  IRIS_CHECK(index.defined(), op, ": undefined index");
  IRIS_CHECK(index.dtype() == DType::i64, op, ": index must be int64, got ", index.desc());
  IRIS_CHECK(index.device() == x.device(), op, ": device mismatch: input ", x.desc(), ", index ",
             index.desc());
  IRIS_CHECK(dims_or_one(x) <= 16, op, ": at most 16 dims are supported, got ", x.desc());
}

void check_source(const char* op, const Tensor& x, const Tensor& src) {
  IRIS_CHECK(src.defined(), op, ": undefined source");
  IRIS_CHECK(src.dtype() == x.dtype(), op, ": dtype mismatch: input ", x.desc(), ", source ",
             src.desc());
  IRIS_CHECK(src.device() == x.device(), op, ": device mismatch: input ", x.desc(), ", source ",
             src.desc());
}

void check_range(const char* op, const Tensor& index, int64_t limit, const Tensor& x, int64_t d) {
  if (index.numel() > 0) kernels::check_index_range_table().get(x.device())(op, index, limit, x, d);
}

bool legacy_empty(const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; }

// Backward helpers: accumulate g into fresh zeros through the kernels directly (the
// indices were checked in forward; the ops would copy the zeros once more).
Tensor index_add_into_zeros(const Shape& shape, int64_t d, const Tensor& idx, const Tensor& g) {
  Tensor out = zeros(shape, g.dtype(), g.device());
  if (g.numel() > 0) kernels::index_add_table().get(g.device())(out, d, idx, dense(g));
  return out;
}

Tensor scatter_add_into_zeros(const Shape& shape, int64_t d, const Tensor& idx, const Tensor& g) {
  Tensor out = zeros(shape, g.dtype(), g.device());
  if (idx.numel() > 0) kernels::scatter_add_table().get(g.device())(out, d, idx, dense(g));
  return out;
}

}  // namespace

// ---- cat / stack ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  IRIS_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  const Tensor* ref = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    IRIS_CHECK(t.defined(), "cat: tensor ", i, " is undefined");
    IRIS_CHECK(t.dim() > 0, "cat: zero-dimensional tensor (at position ", i,
               ") cannot be concatenated");
    if (!ref && !legacy_empty(t)) ref = &t;
  }
  if (!ref) ref = &tensors[0];
  const int64_t d = wrap_dim(dim, ref->dim(), "cat");
  Shape out_shape = ref->shape();
  out_shape[d] = 0;
  std::vector<Tensor> parts;
  std::vector<int64_t> offsets(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    IRIS_CHECK(t.dtype() == ref->dtype() && t.device() == ref->device(),
               "cat: tensors must share dtype and device: tensor 0 is ", tensors[0].desc(),
               ", tensor ", i, " is ", t.desc());
    offsets[i] = out_shape[d];
    if (legacy_empty(t) && &t != ref) continue;
    bool same = t.dim() == ref->dim();
    for (int64_t k = 0; same && k < t.dim(); ++k) same = k == d || t.size(k) == ref->size(k);
    IRIS_CHECK(same, "cat: sizes must match except in dim ", d, ": ", ref->desc(), " and ",
               t.desc(), " (tensor ", i, ")");
    out_shape[d] += t.size(d);
    parts.push_back(dense(t));
  }
  Tensor out = Tensor::empty(out_shape, ref->dtype(), ref->device());
  kernels::cat_table().get(out.device())(parts, d, out);
  if (autograd::any_requires_grad(tensors)) {
    std::vector<Shape> shapes;
    for (const Tensor& t : tensors) shapes.push_back(t.shape());
    autograd::record("cat", tensors, {out}, [d, offsets, shapes](const BackwardCtx& c) {
      std::vector<Tensor> grads(shapes.size());
      for (size_t i = 0; i < shapes.size(); ++i) {
        if (!c.need(i)) continue;
        const bool skipped = shapes[i].size() == 1 && shapes[i][0] == 0;
        grads[i] = skipped ? zeros(shapes[i], c.grad().dtype(), c.grad().device())
                           : c.grad().narrow(d, offsets[i], shapes[i][d]);
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  IRIS_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    IRIS_CHECK(tensors[i].defined(), "stack: tensor ", i, " is undefined");
    IRIS_CHECK(tensors[i].shape() == tensors[0].shape(),
               "stack: expects tensors of equal size, got ", tensors[0].desc(), " at entry 0 and ",
               tensors[i].desc(), " at entry ", i);
  }
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
  return cat(parts, d);
}

// ---- split / chunk (views; one node whose backward concatenates the pieces' grads) ----

std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes,
                                     int64_t dim) {
  IRIS_CHECK(x.defined(), "split: undefined input");
  IRIS_CHECK(x.dim() > 0, "split: cannot split a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    IRIS_CHECK(s >= 0, "split: negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  IRIS_CHECK(!sizes.empty() && total == x.size(d), "split: sizes ", shape_str(sizes),
             " do not sum to ", x.size(d), " (dim ", d, " of ", x.desc(), ")");
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[d] = s;
    pieces.push_back(x.as_strided(shape, x.strides(), x.offset() + start * x.stride(d)));
    start += s;
  }
  if (autograd::any_requires_grad({&x}))
    autograd::record("split", {x}, pieces,
                     [d](const BackwardCtx& c) { return std::vector<Tensor>{cat(c.grads, d)}; });
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  return split_with_sizes(x, sizes, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  IRIS_CHECK(x.defined(), "split: undefined input");
  IRIS_CHECK(x.dim() > 0, "split: cannot split a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(d);
  IRIS_CHECK(split_size > 0 || (split_size == 0 && n == 0),
             "split: split_size must be positive, got ", split_size, " for dim ", d, " of ",
             x.desc());
  const int64_t pieces =
      split_size == 0 ? 1 : std::max<int64_t>((n + split_size - 1) / split_size, 1);
  std::vector<int64_t> sizes(pieces, split_size);
  sizes.back() = n - split_size * (pieces - 1);
  return split_with_sizes(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  IRIS_CHECK(x.defined(), "chunk: undefined input");
  IRIS_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  IRIS_CHECK(x.dim() > 0, "chunk: cannot chunk a zero-dimensional tensor ", x.desc());
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.size(d);
  if (n == 0) return split_with_sizes(x, std::vector<int64_t>(chunks, 0), d);
  return split(x, (n + chunks - 1) / chunks, d);
}

// ---- index_select / index_add ----

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_operands("index_select", x, index);
  IRIS_CHECK(index.dim() <= 1, "index_select: index must have at most one dim, got ", index.desc());
  const int64_t d = wrap_dim(dim, dims_or_one(x), "index_select");
  IRIS_CHECK(x.dim() > 0 || index.numel() == 1, "index_select: a 0-dim input takes one index, got ",
             index.desc());
  const Tensor idx = dense(index);
  check_range("index_select", idx, size_or_one(x, d), x, d);
  Shape out_shape = x.shape();
  if (x.dim() > 0) out_shape[d] = idx.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (out.numel() > 0) kernels::index_select_table().get(x.device())(dense(x), d, idx, out);
  if (autograd::any_requires_grad({&x}))
    autograd::record("index_select", {x}, {out},
                     [d, xs = x.shape(), I = Saved(idx)](const BackwardCtx& c) {
                       return std::vector<Tensor>{index_add_into_zeros(xs, d, I.get(), c.grad())};
                     });
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source) {
  check_operands("index_add", x, index);
  check_source("index_add", x, source);
  IRIS_CHECK(index.dim() <= 1, "index_add: index must have at most one dim, got ", index.desc());
  const int64_t d = wrap_dim(dim, dims_or_one(x), "index_add");
  Shape want = x.shape();
  if (x.dim() > 0) want[d] = index.numel();
  const bool fits = x.dim() > 0 ? source.shape() == want
                                : index.numel() == 1 && source.numel() == 1 && source.dim() <= 1;
  IRIS_CHECK(fits, "index_add: source ", source.desc(), " does not match input ", x.desc(),
             " with ", index.numel(), " indices along dim ", d);
  const Tensor idx = dense(index);
  check_range("index_add", idx, size_or_one(x, d), x, d);
  Tensor out = dense_copy(x);
  if (source.numel() > 0) kernels::index_add_table().get(x.device())(out, d, idx, dense(source));
  if (autograd::any_requires_grad({&x, &source}))
    autograd::record("index_add", {x, source}, {out},
                     [d, ss = source.shape(), I = Saved(idx)](const BackwardCtx& c) {
                       return std::vector<Tensor>{
                           c.need(0) ? c.grad() : Tensor(),
                           c.need(1) ? index_select(c.grad(), d, I.get()).reshape(ss) : Tensor()};
                     });
  return out;
}

// ---- gather / scatter_add ----

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_operands("gather", x, index);
  IRIS_CHECK(dims_or_one(index) == dims_or_one(x), "gather: index ", index.desc(),
             " must have as many dims as the input ", x.desc());
  const int64_t d = wrap_dim(dim, dims_or_one(x), "gather");
  for (int64_t k = 0; k < dims_or_one(x); ++k)
    IRIS_CHECK(k == d || size_or_one(index, k) <= size_or_one(x, k), "gather: index ", index.desc(),
               " is larger than the input ", x.desc(), " in dim ", k);
  const Tensor idx = dense(index);
  check_range("gather", idx, size_or_one(x, d), x, d);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (out.numel() > 0) kernels::gather_table().get(x.device())(dense(x), d, idx, out);
  if (autograd::any_requires_grad({&x}))
    autograd::record("gather", {x}, {out},
                     [d, xs = x.shape(), I = Saved(idx)](const BackwardCtx& c) {
                       return std::vector<Tensor>{scatter_add_into_zeros(xs, d, I.get(), c.grad())};
                     });
  return out;
}

namespace {
// gather's result (index's shape) placed in the leading corner of a zero tensor of src's shape.
Tensor pad_to(const Tensor& g, const Shape& shape) {
  if (g.numel() == numel_of(shape)) return g.reshape(shape);
  Tensor out = zeros(shape, g.dtype(), g.device());
  Tensor corner = out;
  for (int64_t k = 0; k < g.dim(); ++k) corner = corner.narrow(k, 0, g.size(k));
  copy_(corner, g);
  return out;
}
}  // namespace

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  check_operands("scatter_add", x, index);
  check_source("scatter_add", x, src);
  const int64_t nd = dims_or_one(x);
  IRIS_CHECK(dims_or_one(index) == nd && dims_or_one(src) == nd, "scatter_add: input ", x.desc(),
             ", index ", index.desc(), " and source ", src.desc(),
             " must have the same number of dims");
  const int64_t d = wrap_dim(dim, nd, "scatter_add");
  for (int64_t k = 0; k < nd; ++k) {
    IRIS_CHECK(size_or_one(index, k) <= size_or_one(src, k), "scatter_add: index ", index.desc(),
               " is larger than the source ", src.desc(), " in dim ", k);
    IRIS_CHECK(k == d || size_or_one(index, k) <= size_or_one(x, k), "scatter_add: index ",
               index.desc(), " is larger than the input ", x.desc(), " in dim ", k);
  }
  const Tensor idx = dense(index);
  check_range("scatter_add", idx, size_or_one(x, d), x, d);
  Tensor out = dense_copy(x);
  if (idx.numel() > 0) kernels::scatter_add_table().get(x.device())(out, d, idx, dense(src));
  if (autograd::any_requires_grad({&x, &src}))
    autograd::record("scatter_add", {x, src}, {out},
                     [d, ss = src.shape(), I = Saved(idx)](const BackwardCtx& c) {
                       return std::vector<Tensor>{
                           c.need(0) ? c.grad() : Tensor(),
                           c.need(1) ? pad_to(gather(c.grad(), d, I.get()), ss) : Tensor()};
                     });
  return out;
}

}  // namespace iris
