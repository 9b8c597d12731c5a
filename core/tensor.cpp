#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "core/allocator.h"

namespace iris {
namespace {

double load_as_double(const void* p, DType dt) {
  switch (dt) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f64: return *static_cast<const double*>(p);
    case DType::bf16: return bf16_to_float(*static_cast<const bf16*>(p));
    case DType::f16: return f16_to_float(*static_cast<const f16*>(p));
    case DType::i32: return *static_cast<const int32_t*>(p);
    case DType::i64: return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::u8: return *static_cast<const uint8_t*>(p);
    case DType::b8: return *static_cast<const uint8_t*>(p) ? 1.0 : 0.0;
  }
  return 0;
}

void store_from_double(void* p, DType dt, double v) {
  switch (dt) {
    case DType::f32: *static_cast<float*>(p) = static_cast<float>(v); break;
    case DType::f64: *static_cast<double*>(p) = v; break;
    case DType::bf16: *static_cast<bf16*>(p) = float_to_bf16(static_cast<float>(v)); break;
    case DType::f16: *static_cast<f16*>(p) = float_to_f16(static_cast<float>(v)); break;
    case DType::i32: *static_cast<int32_t*>(p) = static_cast<int32_t>(v); break;
    case DType::i64: *static_cast<int64_t*>(p) = static_cast<int64_t>(v); break;
    case DType::u8: *static_cast<uint8_t*>(p) = static_cast<uint8_t>(v); break;
    case DType::b8: *static_cast<uint8_t*>(p) = v != 0 ? 1 : 0; break;
  }
}

// Host bytes of the storage span that `t` addresses, and the element offset of t inside them.
std::vector<uint8_t> host_span(const Tensor& t, int64_t* first) {
  int64_t lo = t.offset(), hi = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == 0) {
      *first = 0;
      return {};
    }
    const int64_t ext = (t.size(d) - 1) * t.stride(d);
    (ext < 0 ? lo : hi) += ext;
  }
  const size_t isz = itemsize(t.dtype());
  std::vector<uint8_t> bytes((hi - lo + 1) * isz);
  const uint8_t* src = static_cast<const uint8_t*>(t.storage()->data()) + lo * isz;
  allocator_for(t.device().type).copy_to_host(bytes.data(), src, bytes.size(), t.device().index);
  *first = t.offset() - lo;
  return bytes;
}

// Calls fn(element_offset) for every element of t in row-major order.
template <class Fn>
void for_each_offset(const Tensor& t, int64_t base, Fn fn) {
  const int64_t n = t.numel();
  if (n == 0) return;
  const int64_t nd = t.dim();
  std::vector<int64_t> idx(nd, 0);
  int64_t off = base;
  for (int64_t i = 0; i < n; ++i) {
    fn(off);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < t.size(d)) {
        off += t.stride(d);
        break;
      }
      off -= (t.size(d) - 1) * t.stride(d);
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    IRIS_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * itemsize(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  IRIS_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape), "from_vector: ",
             values.size(), " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_v<T>, device);
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> bytes(values.begin(), values.end());
    allocator_for(device.type).copy_from_host(t.raw_data(), bytes.data(), bytes.size(), device.index);
  } else {
    allocator_for(device.type)
        .copy_from_host(t.raw_data(), values.data(), values.size() * sizeof(T), device.index);
  }
  return t;
}

template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<bf16>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<f16>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<int64_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<uint8_t>&, const Shape&, Device);
template Tensor Tensor::from_vector(const std::vector<bool>&, const Shape&, Device);

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  Tensor t = empty({}, dtype, device);
  uint8_t buf[8];
  store_from_double(buf, dtype, value);
  allocator_for(device.type).copy_from_host(t.raw_data(), buf, itemsize(dtype), device.index);
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (size(d) == 1) continue;
    if (stride(d) != expected) return false;
    expected *= size(d);
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<uint8_t*>(storage()->data()) + offset() * itemsize(dtype());
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  std::ostringstream os;
  os << dtype_name(dtype()) << shape_str(shape()) << ' ' << device().str();
  return os.str();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  int64_t first = 0;
  const std::vector<uint8_t> bytes = host_span(*this, &first);
  const size_t isz = itemsize(dtype());
  std::vector<T> out;
  out.reserve(numel());
  for_each_offset(*this, first, [&](int64_t off) {
    const double v = load_as_double(bytes.data() + off * isz, dtype());
    if constexpr (std::is_same_v<T, bf16>) {
      out.push_back(float_to_bf16(static_cast<float>(v)));
    } else if constexpr (std::is_same_v<T, f16>) {
      out.push_back(float_to_f16(static_cast<float>(v)));
    } else {
      out.push_back(static_cast<T>(v));
    }
  });
  return out;
}

template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template std::vector<int64_t> Tensor::to_vector() const;
template std::vector<uint8_t> Tensor::to_vector() const;

double Tensor::item() const {
  IRIS_CHECK(numel() == 1, "item: tensor of ", desc(), " has ", numel(), " elements, not 1");
  return to_vector<double>()[0];
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  IRIS_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape),
             " and strides ", shape_str(strides), " differ in length");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << desc() << ", [";
  const std::vector<double> v = to_vector<double>();
  const size_t show = std::min<size_t>(v.size(), 64);
  for (size_t i = 0; i < show; ++i) os << (i ? ", " : "") << v[i];
  if (show < v.size()) os << ", ...";
  os << "])";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace iris
