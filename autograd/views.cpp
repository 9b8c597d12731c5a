// Tensor's view and conversion methods: geometry from core, derivative here.
#include <algorithm>
#include <numeric>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/allocator.h"
#include "kernels/elementwise.h"

namespace iris {

using autograd::BackwardCtx;

namespace {

// Records a view whose backward maps the gradient back with `back`.
template <class Back>
Tensor record_view(const char* name, const Tensor& x, Tensor out, Back back) {
  if (autograd::any_requires_grad({&x}))
    autograd::record(name, {x}, {out}, [back](const BackwardCtx& c) {
      return std::vector<Tensor>{back(c.grad())};
    });
  return out;
}

Shape infer_shape(const Shape& want, int64_t numel, const char* op) {
  Shape s = want;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      IRIS_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_str(want));
      infer = static_cast<int64_t>(i);
    } else {
      IRIS_CHECK(s[i] >= 0, op, ": invalid size in ", shape_str(want));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    IRIS_CHECK(known > 0 && numel % known == 0, op, ": shape ", shape_str(want),
               " is invalid for ", numel, " elements");
    s[infer] = numel / known;
  }
  IRIS_CHECK(numel_of(s) == numel, op, ": shape ", shape_str(want), " is invalid for ", numel,
             " elements");
  return s;
}

// Strides for viewing (shape, strides) as `target` without a copy, if possible
// (PyTorch's computeStride: split the old dims into contiguous chunks).
bool view_strides(const Shape& shape, const Shape& strides, const Shape& target, Shape* out) {
  if (numel_of(shape) == 0 || shape.empty()) {
    *out = contiguous_strides(target);
    return true;
  }
  out->assign(target.size(), 0);
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        (*out)[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor copy_to_device(const Tensor& x, Device device) {
  Tensor src = x.is_contiguous() ? x : x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  const size_t n = static_cast<size_t>(x.numel()) * itemsize(x.dtype());
  if (n == 0) return out;
  if (src.device().is_cpu()) {
    allocator_for(device.type).copy_from_host(out.raw_data(), src.raw_data(), n, device.index);
  } else if (device.is_cpu()) {
    allocator_for(src.device().type)
        .copy_to_host(out.raw_data(), src.raw_data(), n, src.device().index);
  } else {
    std::vector<uint8_t> host(n);
    allocator_for(src.device().type).copy_to_host(host.data(), src.raw_data(), n, src.device().index);
    allocator_for(device.type).copy_from_host(out.raw_data(), host.data(), n, device.index);
  }
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& want) const {
  const Shape s = infer_shape(want, numel(), "view");
  Shape st;
  IRIS_CHECK(view_strides(shape(), strides(), s, &st), "view: ", desc(), " cannot be viewed as ",
             shape_str(s), " without a copy (use reshape)");
  return record_view("view", *this, as_strided(s, st, offset()),
                     [in = shape()](const Tensor& g) { return g.reshape(in); });
}

Tensor Tensor::reshape(const Shape& want) const {
  const Shape s = infer_shape(want, numel(), "reshape");
  Shape st;
  if (view_strides(shape(), strides(), s, &st)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  IRIS_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
             " dims given for ", desc());
  std::vector<int64_t> d(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape s(dims.size()), st(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    d[i] = wrap_dim(dims[i], dim(), "permute");
    IRIS_CHECK(!seen[d[i]], "permute: dim ", d[i], " repeated");
    seen[d[i]] = true;
    s[i] = size(d[i]);
    st[i] = stride(d[i]);
    inverse[d[i]] = static_cast<int64_t>(i);
  }
  return record_view("permute", *this, as_strided(s, st, offset()),
                     [inverse](const Tensor& g) { return g.permute(inverse); });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, dim(), "transpose")], p[wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  IRIS_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = as_strided(s, st, offset() + start * stride(d));
  return record_view("slice", *this, out, [in = shape(), dt = dtype(), d, start, end, step](const Tensor& g) {
    Tensor gx = zeros(in, dt, g.device());
    copy_(gx.slice(d, start, end, step), g);
    return gx;
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  IRIS_CHECK(start >= 0 && length >= 0 && start + length <= size(d), "narrow: [", start, ", ",
             start + length, ") out of range for dim ", d, " of ", desc());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  IRIS_CHECK(index >= -size(d) && index < size(d), "select: index ", index,
             " out of range for dim ", d, " of ", desc());
  if (index < 0) index += size(d);
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& want) const {
  IRIS_CHECK(static_cast<int64_t>(want.size()) >= dim(), "expand: ", shape_str(want),
             " has fewer dims than ", desc());
  const int64_t lead = static_cast<int64_t>(want.size()) - dim();
  Shape s(want.size()), st(want.size(), 0);
  for (int64_t i = 0; i < static_cast<int64_t>(want.size()); ++i) {
    const int64_t src = i - lead;
    const int64_t have = src >= 0 ? size(src) : 1;
    const int64_t w = want[i] == -1 ? have : want[i];
    IRIS_CHECK(src >= 0 || want[i] != -1, "expand: -1 not allowed for a new leading dim");
    IRIS_CHECK(have == w || have == 1, "expand: ", desc(), " cannot be expanded to ",
               shape_str(want));
    s[i] = w;
    st[i] = src >= 0 && have == w ? stride(src) : 0;
  }
  if (s == shape()) return *this;
  return record_view("expand", *this, as_strided(s, st, offset()),
                     [in = shape()](const Tensor& g) { return sum_to(g, in); });
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (dim() == 0 || size(d) != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return record_view("squeeze", *this, as_strided(s, st, offset()),
                     [in = shape()](const Tensor& g) { return g.reshape(in); });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  const int64_t new_stride = d < dim() ? stride(d) * size(d) : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  return record_view("unsqueeze", *this, as_strided(s, st, offset()),
                     [in = shape()](const Tensor& g) { return g.reshape(in); });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  IRIS_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape s;
  for (int64_t i = 0; i < start_dim; ++i) s.push_back(size(i));
  int64_t n = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) n *= size(i);
  s.push_back(n);
  for (int64_t i = end_dim + 1; i < dim(); ++i) s.push_back(size(i));
  return reshape(s);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  kernels::copy_table().get(device())(*this, out);
  return record_view("clone", *this, out, [](const Tensor& g) { return g; });
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), dt, device());
  kernels::copy_table().get(device())(*this, out);
  if (!is_floating(dt)) return out;
  return record_view("to_dtype", *this, out, [src = dtype()](const Tensor& g) { return g.to(src); });
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  return record_view("to_device", *this, copy_to_device(*this, d),
                     [src = device()](const Tensor& g) { return g.to(src); });
}

}  // namespace iris
