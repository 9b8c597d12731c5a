#include "nn/module.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>

#include "autograd/node.h"
#include "autograd/ops.h"

namespace iris::nn {
namespace {

// Points `t`'s handle at `src`'s data and geometry: everyone holding t sees the change.
// Autograd state stays (requires_grad) except the accumulator, which is rebuilt for the
// new dtype/device on the next backward.
void retarget(const Tensor& t, const Tensor& src) {
  TensorImpl* impl = t.impl_ptr();
  impl->storage = src.storage();
  impl->shape = src.shape();
  impl->strides = src.strides();
  impl->offset = src.offset();
  impl->dtype = src.dtype();
  if (impl->autograd) impl->autograd->grad_accumulator.reset();
}

template <class Convert>
void convert_all(const Module& m, Convert convert) {
  NoGradGuard no_grad;
  std::set<const TensorImpl*> done;
  auto apply = [&](const Tensor& t) {
    if (!done.insert(t.impl_ptr()).second) return;
    const Tensor grad = t.grad();
    const Tensor c = convert(t.detach());
    if (c.storage() != t.storage()) retarget(t, c);
    if (grad.defined()) {
      const Tensor g = convert(grad);
      if (g.storage() != grad.storage()) t.set_grad(g);
    }
  };
  for (const auto& [name, mod] : m.named_modules()) {
    for (const auto& [n, p] : mod->named_parameters(false)) apply(p);
    for (const auto& [n, b] : mod->named_buffers(false)) apply(b);
  }
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

std::string Module::repr() const { return type_name_ + "(" + extra_repr() + ")"; }

Tensor Module::forward(const Tensor& x) {
  IRIS_FAIL(repr(), ": this module has no single-tensor forward (input ",
            x.defined() ? x.desc() : std::string("undefined"), "); call its own forward");
}

void Module::check_new_name(const std::string& name, const char* what) const {
  IRIS_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_, ": ", what,
             " name '", name, "' must be non-empty and contain no '.'");
  bool taken = false;
  for (const Entry& e : params_) taken |= e.name == name;
  for (const Entry& e : buffers_) taken |= e.name == name;
  for (const auto& c : children_) taken |= c.first == name;
  IRIS_CHECK(!taken, type_name_, ": '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  IRIS_CHECK(t.defined() && is_floating(t.dtype()), type_name_, ": parameter '", name,
             "' must be a floating-point tensor, got ", t.defined() ? t.desc() : "undefined");
  IRIS_CHECK(t.is_leaf(), type_name_, ": parameter '", name, "' ", t.desc(),
             " is the output of an op; register a leaf (detach() it)");
  t.set_requires_grad(requires_grad);
  params_.push_back({name, t, true});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_new_name(name, "buffer");
  IRIS_CHECK(t.defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.push_back({name, t, persistent});
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name, "module");
  IRIS_CHECK(child != nullptr, type_name_, ": child module '", name, "' is null");
  children_.emplace_back(name, std::move(child));
}

template <class Fn>
void Module::visit(const std::string& prefix, Fn&& fn) const {
  fn(prefix, *this);
  for (const auto& [name, c] : children_) c->visit(join(prefix, name), fn);
}

std::vector<NamedTensor> Module::named_parameters(bool recurse) const {
  std::vector<NamedTensor> out;
  std::set<const TensorImpl*> seen;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.params_)
      if (seen.insert(e.tensor.impl_ptr()).second) out.emplace_back(join(prefix, e.name), e.tensor);
  };
  if (recurse)
    visit("", add);
  else
    add("", *this);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

std::vector<NamedTensor> Module::named_buffers(bool recurse) const {
  std::vector<NamedTensor> out;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.buffers_) out.emplace_back(join(prefix, e.name), e.tensor);
  };
  if (recurse)
    visit("", add);
  else
    add("", *this);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& [name, c] : children_) out.emplace_back(name, c.get());
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  visit("", [&](const std::string& prefix, const Module& m) {
    out.emplace_back(prefix, const_cast<Module*>(&m));
  });
  return out;
}

std::vector<NamedTensor> Module::state_dict() const {
  std::vector<NamedTensor> out;
  visit("", [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.params_) out.emplace_back(join(prefix, e.name), e.tensor);
    for (const Entry& e : m.buffers_)
      if (e.persistent) out.emplace_back(join(prefix, e.name), e.tensor);
  });
  return out;
}

Tensor Module::find(const std::string& dotted_name) const {
  const Module* m = this;
  std::string rest = dotted_name;
  for (size_t dot; (dot = rest.find('.')) != std::string::npos;) {
    m = &m->child(rest.substr(0, dot));
    rest = rest.substr(dot + 1);
  }
  for (const Entry& e : m->params_)
    if (e.name == rest) return e.tensor;
  for (const Entry& e : m->buffers_)
    if (e.name == rest) return e.tensor;
  IRIS_FAIL(type_name_, ": no parameter or buffer named '", dotted_name, "'");
}

Module& Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return *c;
  IRIS_FAIL(repr(), ": no child module named '", name, "'");
}

void Module::train(bool on) {
  visit("", [on](const std::string&, const Module& m) { const_cast<Module&>(m).training_ = on; });
}

void Module::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters()) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none)
      p.set_grad(Tensor());
    else
      zero_(g);
  }
}

int64_t Module::parameter_count(bool trainable_only) const {
  int64_t n = 0;
  for (const Tensor& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

Module& Module::to(DType dtype) {
  convert_all(*this, [dtype](const Tensor& t) {
    return is_floating(t.dtype()) && t.dtype() != dtype ? t.to(dtype).contiguous() : t;
  });
  return *this;
}

Module& Module::to(Device device) {
  convert_all(*this, [device](const Tensor& t) { return t.to(device); });
  return *this;
}

std::string Module::summary() const {
  std::ostringstream os;
  os << repr() << "\n";
  size_t width = 4;
  const auto params = named_parameters();
  const auto buffers = named_buffers();
  for (const auto& list : {params, buffers})
    for (const auto& [name, t] : list) width = std::max(width, name.size());
  char line[512];
  auto row = [&](const std::string& name, const std::string& shape, const std::string& dtype,
                 const std::string& count) {
    std::snprintf(line, sizeof line, "  %-*s  %-18s %-8s %12s\n", static_cast<int>(width),
                  name.c_str(), shape.c_str(), dtype.c_str(), count.c_str());
    os << line;
  };
  row("name", "shape", "dtype", "count");
  int64_t trainable = 0, buffer_count = 0;
  for (const auto& [name, p] : params) {
    row(name, shape_str(p.shape()), dtype_name(p.dtype()), std::to_string(p.numel()));
    if (p.requires_grad()) trainable += p.numel();
  }
  for (const auto& [name, b] : buffers) {
    row(name + " (buffer)", shape_str(b.shape()), dtype_name(b.dtype()), std::to_string(b.numel()));
    buffer_count += b.numel();
  }
  os << "  total: " << parameter_count() << " parameters (" << trainable << " trainable) in "
     << params.size() << " tensors; " << buffer_count << " buffer elements in " << buffers.size()
     << " tensors\n";
  return os.str();
}

}  // namespace iris::nn
