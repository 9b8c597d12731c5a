#pragma once
// The tape: each differentiable op that saw an input requiring grad leaves a
// Node whose edges point at the nodes of its inputs. Leaves requiring grad get
// an AccumulateGrad node that adds into their .grad().
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace iris {

class Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: this input needs no gradient
  uint32_t input_nr = 0;     // which output of `fn` the input was
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  uint32_t output_nr = 0;
  std::weak_ptr<Node> grad_accumulator;  // leaves only
};

// Shape, dtype and device of a node output, so a missing gradient can be made as zeros.
struct OutputInfo {
  Shape shape;
  DType dtype;
  Device device;
};

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return seq_; }

  // Gradients w.r.t. each output (all defined) -> gradients w.r.t. each input
  // (undefined where that input needs none).
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) = 0;
  // Drops what backward needed (after a backward without retain_graph).
  virtual void release() {}

  std::vector<Edge> next;
  std::vector<OutputInfo> outputs;

 private:
  std::string name_;
  uint64_t seq_;
};

// Gradient mode (thread-local): ops record only while it is enabled.
bool grad_mode_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

namespace autograd {

// Runs backward from `roots` with gradients `grads` (same shapes).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph);

// The edge that carries gradient into `t` (null fn if t needs none).
Edge edge_of(const Tensor& t);

}  // namespace autograd
}  // namespace iris
