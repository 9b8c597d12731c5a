#pragma once
// Tensor: a cheap shared handle to (storage, shape, strides, offset, dtype).
//
// core/ owns the data layout. The differentiable methods (views, conversions,
// backward) are declared here for a natural API and defined in autograd/,
// which records them on the tape; core itself never calls them.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace iris {

struct AutogradMeta;  // autograd/: requires_grad, grad, grad_fn
class Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;
  DType dtype = DType::f32;
  std::shared_ptr<AutogradMeta> autograd;  // null: not tracked
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation (core: uninitialised memory or host data) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = Device::cpu());
  // A 0-dim tensor holding `value` converted to dtype (on the host, then copied to device).
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t offset() const { return impl().offset; }
  int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl* impl_ptr() const { return impl_.get(); }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  // "float32[2, 3] cpu" for error messages.
  std::string desc() const;
  // Values, for printing and tests (copies to the host).
  std::string str() const;

  // Pointer to the first element (storage + offset).
  void* raw_data() const;
  template <class T>
  T* data() const {
    IRIS_CHECK(dtype() == dtype_v<T>, "data<", dtype_name(dtype_v<T>), ">: tensor is ", desc());
    return static_cast<T*>(raw_data());
  }
  // Host copy of the elements in logical (row-major) order, converted to T.
  template <class T>
  std::vector<T> to_vector() const;
  // The single element as a double (any dtype, any device); throws unless numel() == 1.
  double item() const;

  // A view with the given geometry over the same storage; not recorded by autograd.
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;
  // Marks the storage as written in place (autograd's saved-tensor check).
  void bump_version() const { impl().storage->bump_version(); }

  // ---- views and conversions (defined in autograd/views.cpp; differentiable) ----
  Tensor view(const Shape& shape) const;     // no copy; throws if the strides do not allow it
  Tensor reshape(const Shape& shape) const;  // a view where possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- autograd (defined in autograd/) ----
  bool requires_grad() const;
  // Leaf tensors only: marks this tensor as a parameter whose .grad() backward fills.
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;  // undefined until backward has reached this leaf
  void set_grad(const Tensor& g) const;
  bool is_leaf() const;
  std::shared_ptr<Node> grad_fn() const;
  // Backward from this tensor: a scalar (grad 1) or with `grad` of its shape.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, not tracked

 private:
  TensorImpl& impl() const {
    IRIS_CHECK(impl_, "tensor: use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace iris
