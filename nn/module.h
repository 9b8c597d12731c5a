#pragma once
// nn::Module: the base of every layer and model. A module owns named parameters
// (leaf tensors requiring grad), named buffers (running statistics, counters) and
// named children, and lists them with PyTorch's dotted names in PyTorch's order: a
// module's own parameters (then buffers) in registration order, then each child's,
// depth first. So state_dict() of an iris model and of its torch twin hold the same
// names, shapes and layouts, and checkpoints move both ways.
//
// Layers keep Tensor handles to their parameters as members; the registry holds the
// same handles. to(dtype) / to(device) convert tensors in place (the handle keeps its
// identity), so members, the registry and an optimizer built before or after all see
// the converted tensor. Build the optimizer after to() anyway: state it has already
// created (exp_avg, momentum) keeps the old dtype and its next step throws.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace iris::nn {

using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // "Linear", "MultiheadAttention", ...; extra_repr() adds the hyper-parameters.
  const std::string& type_name() const { return type_name_; }
  virtual std::string extra_repr() const { return ""; }
  // "Linear(in_features=4, out_features=3, bias=true)"
  std::string repr() const;

  // The single-tensor forward that Sequential chains. Modules with other signatures
  // keep this default, which throws naming the module.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- registration (names: non-empty, no '.', unique within the module) ----
  // Registers t (a floating-point leaf) as a parameter; returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  // persistent = false: not in state_dict() (but moved by to()).
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // ---- traversal ----
  // Parameters, each tensor once (a tied weight appears under its first name).
  std::vector<NamedTensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<NamedTensor> named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Module*>> named_children() const;
  // This module ("") and every descendant, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  // Parameters and persistent buffers, module by module, as torch's state_dict().
  std::vector<NamedTensor> state_dict() const;
  // A parameter or buffer by dotted name; throws naming the module and the name.
  Tensor find(const std::string& dotted_name) const;
  // The child by name; throws when absent.
  Module& child(const std::string& name) const;

  // ---- modes and gradients ----
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad(bool set_to_none = true);
  int64_t parameter_count(bool trainable_only = false) const;

  // ---- conversion, in place ----
  // Floating-point parameters and buffers change dtype (integer buffers such as
  // num_batches_tracked stay as they are); gradients follow.
  Module& to(DType dtype);
  Module& to(Device device);

  // One line per parameter and buffer: name, shape, dtype, count; then totals.
  std::string summary() const;

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  template <class Fn>
  void visit(const std::string& prefix, Fn&& fn) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace iris::nn
