// The backward engine: dependency counts over the graph reachable from the
// roots, then nodes run newest-first once all their gradients have arrived, so
// a shared sub-graph runs once with the sum of its incoming gradients.
#include <atomic>
#include <queue>
#include <unordered_map>

#include "autograd/function.h"
#include "autograd/node.h"
#include "kernels/elementwise.h"

namespace iris {
namespace {

std::atomic<uint64_t> g_next_seq{0};
thread_local bool t_grad_enabled = true;

Tensor add_grads(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  kernels::binary_table().get(a.device())(kernels::BinaryOp::add, a, b, out);
  return out;
}

// Leaf sink: adds into the leaf's .grad().
class AccumulateGrad final : public Node {
 public:
  AccumulateGrad(std::shared_ptr<AutogradMeta> meta, const Tensor& leaf)
      : Node("AccumulateGrad"), meta_(std::move(meta)) {
    outputs.push_back({leaf.shape(), leaf.dtype(), leaf.device()});
  }
  std::vector<Tensor> apply(const std::vector<Tensor>& g) override {
    const Tensor& grad = g[0];
    IRIS_CHECK(grad.shape() == outputs[0].shape, "backward: gradient of shape ",
               shape_str(grad.shape()), " for a leaf of shape ", shape_str(outputs[0].shape));
    if (!meta_->grad.defined()) {
      // A fresh dense copy: the incoming gradient may alias another tensor.
      Tensor copy = Tensor::empty(grad.shape(), grad.dtype(), grad.device());
      kernels::copy_table().get(grad.device())(grad, copy);
      meta_->grad = copy;
    } else {
      kernels::binary_table().get(grad.device())(kernels::BinaryOp::add, meta_->grad, grad,
                                                 meta_->grad);
    }
    return {};
  }

 private:
  std::shared_ptr<AutogradMeta> meta_;
};

class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, autograd::BackwardFn fn) : Node(name), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const std::vector<Tensor>& g) override {
    IRIS_CHECK(fn_, name(),
               ": backward through a graph that was already freed (call backward with "
               "retain_graph=true to run it twice)");
    autograd::BackwardCtx ctx{g, {}};
    ctx.needs.reserve(next.size());
    for (const Edge& e : next) ctx.needs.push_back(e.fn != nullptr);
    return fn_(ctx);
  }
  void release() override { fn_ = nullptr; }

 private:
  autograd::BackwardFn fn_;
};

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta* m = leaf.impl_ptr()->autograd.get();
  if (auto acc = m->grad_accumulator.lock()) return acc;
  auto acc = std::make_shared<AccumulateGrad>(leaf.impl_ptr()->autograd, leaf);
  m->grad_accumulator = acc;
  return acc;
}

}  // namespace

Node::Node(std::string name) : name_(std::move(name)), seq_(g_next_seq++) {}

bool grad_mode_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

namespace autograd {

Saved::Saved(const Tensor& t) {
  if (!t.defined()) return;
  t_ = t.as_strided(t.shape(), t.strides(), t.offset());
  version_ = t.storage()->version();
}

const Tensor& Saved::get() const {
  IRIS_CHECK(!t_.defined() || t_.storage()->version() == version_,
             "a tensor saved for backward (", t_.desc(),
             ") was modified by an in-place operation after it was saved (version ",
             t_.storage()->version(), ", expected ", version_, ")");
  return t_;
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.impl_ptr()->autograd) return {};
  AutogradMeta* m = t.impl_ptr()->autograd.get();
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  if (m->requires_grad) return {grad_accumulator(t), 0};
  return {};
}

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn fn) {
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next.push_back(edge_of(t));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->outputs.push_back({out.shape(), out.dtype(), out.device()});
    auto meta = std::make_shared<AutogradMeta>();
    meta->requires_grad = true;
    meta->grad_fn = node;
    meta->output_nr = static_cast<uint32_t>(i);
    out.impl_ptr()->autograd = std::move(meta);
  }
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  IRIS_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots and ", grads.size(),
             " gradients");
  NoGradGuard no_grad;
  std::vector<Edge> root_edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    IRIS_CHECK(roots[i].requires_grad(), "backward: tensor ", roots[i].desc(),
               " does not require grad and has no grad_fn");
    IRIS_CHECK(grads[i].shape() == roots[i].shape(), "backward: gradient ", grads[i].desc(),
               " does not match the tensor ", roots[i].desc());
    root_edges.push_back(edge_of(roots[i]));
  }
  // Dependency counts over everything reachable.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack;
  for (const Edge& e : root_edges)
    if (e.fn && !deps.count(e.fn.get())) deps[e.fn.get()] = 0, stack.push_back(e.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.fn) continue;
      auto [it, fresh] = deps.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.fn.get());
    }
  }
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto deliver = [&](const Edge& e, const Tensor& g) {
    std::vector<Tensor>& buf = buffers[e.fn.get()];
    if (buf.empty()) buf.resize(e.fn->outputs.size());
    Tensor& slot = buf[e.input_nr];
    slot = slot.defined() ? add_grads(slot, g) : g;
  };
  auto cmp = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(cmp)> ready(cmp);
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;  // nodes alive while in flight
  for (size_t i = 0; i < root_edges.size(); ++i) {
    const Edge& e = root_edges[i];
    deliver(e, grads[i]);
    keep[e.fn.get()] = e.fn;
  }
  for (const Edge& e : root_edges)
    if (deps[e.fn.get()] == 0) {
      deps[e.fn.get()] = -1;  // queued
      ready.push(e.fn.get());
    }
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[n]);
    buffers.erase(n);
    in.resize(n->outputs.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i].defined()) continue;
      const OutputInfo& o = n->outputs[i];
      in[i] = Tensor::empty(o.shape, o.dtype, o.device);
      kernels::fill_table().get(o.device)(in[i], 0.0);
    }
    std::vector<Tensor> out;
    try {
      out = n->apply(in);
    } catch (const Error& err) {
      IRIS_FAIL("backward of ", n->name(), ": ", err.what());
    }
    if (!retain_graph) n->release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      if (!e.fn) continue;
      if (i < out.size() && out[i].defined()) {
        const OutputInfo& o = e.fn->outputs[e.input_nr];
        IRIS_CHECK(out[i].shape() == o.shape, "backward of ", n->name(), ": gradient for input ",
                   i, " has shape ", shape_str(out[i].shape()), ", expected ", shape_str(o.shape));
        deliver(e, out[i]);
      }
      keep.try_emplace(e.fn.get(), e.fn);
      if (--deps[e.fn.get()] == 0) ready.push(e.fn.get());
    }
    keep.erase(n);
  }
}

}  // namespace autograd

// ---- Tensor's autograd methods ----

bool Tensor::requires_grad() const {
  const auto& m = impl_ptr() ? impl_ptr()->autograd : nullptr;
  return m && (m->requires_grad || m->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool on) {
  IRIS_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can be marked (", desc(),
             " is the output of ", grad_fn()->name(), ")");
  IRIS_CHECK(!on || is_floating(dtype()), "set_requires_grad: ", desc(),
             " is not a floating-point tensor");
  auto& m = impl_ptr()->autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  m->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& m = impl_ptr()->autograd;
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  auto& m = impl_ptr()->autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  IRIS_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient ", g.desc(),
             " does not match ", desc());
  m->grad = g;
}

bool Tensor::is_leaf() const {
  const auto& m = impl_ptr()->autograd;
  return !m || !m->grad_fn;
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  const auto& m = impl_ptr()->autograd;
  return m ? m->grad_fn : nullptr;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  Tensor g = grad;
  if (!g.defined()) {
    IRIS_CHECK(numel() == 1, "backward: called without a gradient on ", desc(),
               "; a gradient is implicit only for a scalar");
    g = Tensor::empty(shape(), dtype(), device());
    kernels::fill_table().get(device())(g, 1.0);
  }
  autograd::backward({*this}, {g}, retain_graph);
}

Tensor Tensor::detach() const { return as_strided(shape(), strides(), offset()); }

}  // namespace iris
