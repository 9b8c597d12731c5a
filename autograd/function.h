#pragma once
// How an op records itself: compute outputs with kernels, then `record` a
// backward lambda beside it. Saved tensors are checked against in-place writes.
#include <functional>
#include <initializer_list>
#include <vector>

#include "autograd/node.h"

namespace iris::autograd {

// A tensor kept for backward: a detached alias (no reference cycle through the
// graph) plus the storage version at save time.
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor& t);
  // Throws if the tensor was modified in place since it was saved.
  const Tensor& get() const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint32_t version_ = 0;
};

struct BackwardCtx {
  const std::vector<Tensor>& grads;  // one per output, all defined
  std::vector<bool> needs;           // needs[i]: input i wants a gradient
  const Tensor& grad(size_t i = 0) const { return grads[i]; }
  bool need(size_t i) const { return needs[i]; }
};
using BackwardFn = std::function<std::vector<Tensor>(const BackwardCtx&)>;

// True when grad mode is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a node computing `fn` to `outputs` (which become non-leaf tensors
// requiring grad). Inputs that need no grad get a null edge. Call only when
// any_requires_grad(inputs) holds.
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn fn);

}  // namespace iris::autograd
