// Optimizer steps: argument checks, dense gradients, the multi-tensor kernel, version bumps.
#include <cmath>

#include "autograd/node.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "autograd/optim_ops.h"
#include "kernels/optim.h"

namespace iris {

using autograd::dense;
namespace {

void check_param(const char* op, size_t i, const Tensor& p, Device device) {
  IRIS_CHECK(p.defined(), op, ": param ", i, " is undefined");
  IRIS_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, op, ": param ", i, " ", p.desc(),
             " is not float32 or float64");
  IRIS_CHECK(p.device() == device, op, ": param ", i, " ", p.desc(),
             " is not on the device of param 0 (", device.str(), ")");
  IRIS_CHECK(p.is_contiguous(), op, ": param ", i, " ", p.desc(), " is not contiguous");
}

// `t` (a gradient or a state tensor of param i) must match the param.
void check_match(const char* op, const char* what, size_t i, const Tensor& t, const Tensor& p,
                 bool need_contiguous) {
  IRIS_CHECK(t.defined(), op, ": param ", i, " ", p.desc(), " has no ", what);
  IRIS_CHECK(t.shape() == p.shape() && t.dtype() == p.dtype() && t.device() == p.device(), op, ": ",
             what, " ", t.desc(), " of param ", i, " does not match the param ", p.desc());
  IRIS_CHECK(!need_contiguous || t.is_contiguous(), op, ": ", what, " ", t.desc(), " of param ", i,
             " is not contiguous");
}

void check_count(const char* op, const char* what, size_t n, size_t params) {
  IRIS_CHECK(n == params, op, ": ", n, " ", what, " for ", params, " params");
}

}  // namespace

void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                int64_t step, double lr, double beta1, double beta2, double eps,
                double weight_decay, bool maximize) {
  const char* op = "adamw_step";
  IRIS_CHECK(lr >= 0, op, ": invalid learning rate ", lr);
  IRIS_CHECK(eps >= 0, op, ": invalid epsilon ", eps);
  IRIS_CHECK(beta1 >= 0 && beta1 < 1, op, ": invalid beta1 ", beta1, " (need 0 <= beta1 < 1)");
  IRIS_CHECK(beta2 >= 0 && beta2 < 1, op, ": invalid beta2 ", beta2, " (need 0 <= beta2 < 1)");
  IRIS_CHECK(weight_decay >= 0, op, ": invalid weight_decay ", weight_decay);
  IRIS_CHECK(step >= 1, op, ": step is 1-based, got ", step);
  check_count(op, "grads", grads.size(), params.size());
  check_count(op, "exp_avg tensors", exp_avg.size(), params.size());
  check_count(op, "exp_avg_sq tensors", exp_avg_sq.size(), params.size());
  if (params.empty()) return;
  const Device device = params[0].defined() ? params[0].device() : Device::cpu();
  std::vector<Tensor> g(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    check_param(op, i, params[i], device);
    check_match(op, "grad", i, grads[i], params[i], false);
    check_match(op, "exp_avg", i, exp_avg[i], params[i], true);
    check_match(op, "exp_avg_sq", i, exp_avg_sq[i], params[i], true);
    g[i] = dense(grads[i]);
  }
  NoGradGuard no_grad;
  kernels::adamw_step_table().get(device)(
      params, g, exp_avg, exp_avg_sq,
      kernels::AdamWHyper{lr, beta1, beta2, eps, weight_decay, step, maximize});
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].bump_version();
    exp_avg[i].bump_version();
    exp_avg_sq[i].bump_version();
  }
}

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              std::vector<Tensor>& momentum_buffers, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize) {
  const char* op = "sgd_step";
  IRIS_CHECK(lr >= 0, op, ": invalid learning rate ", lr);
  IRIS_CHECK(momentum >= 0, op, ": invalid momentum ", momentum);
  IRIS_CHECK(weight_decay >= 0, op, ": invalid weight_decay ", weight_decay);
  IRIS_CHECK(!nesterov || (momentum > 0 && dampening == 0), op,
             ": nesterov momentum requires a momentum and zero dampening (momentum ", momentum,
             ", dampening ", dampening, ")");
  check_count(op, "grads", grads.size(), params.size());
  const bool use_momentum = momentum != 0;
  if (use_momentum && momentum_buffers.empty()) momentum_buffers.resize(params.size());
  if (use_momentum) check_count(op, "momentum buffers", momentum_buffers.size(), params.size());
  if (params.empty()) return;
  const Device device = params[0].defined() ? params[0].device() : Device::cpu();
  std::vector<Tensor> g(params.size());
  std::vector<uint8_t> fresh(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    check_param(op, i, params[i], device);
    check_match(op, "grad", i, grads[i], params[i], false);
    if (use_momentum && momentum_buffers[i].defined())
      check_match(op, "momentum buffer", i, momentum_buffers[i], params[i], true);
    g[i] = dense(grads[i]);
  }
  // New buffers only once every check has passed, so a bad call changes nothing.
  if (use_momentum)
    for (size_t i = 0; i < params.size(); ++i)
      if (!momentum_buffers[i].defined()) {
        momentum_buffers[i] = Tensor::empty(params[i].shape(), params[i].dtype(), device);
        fresh[i] = 1;
      }
  NoGradGuard no_grad;
  kernels::sgd_step_table().get(device)(
      params, g, use_momentum ? momentum_buffers : std::vector<Tensor>{}, fresh,
      kernels::SgdHyper{lr, momentum, dampening, weight_decay, nesterov, maximize});
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].bump_version();
    if (use_momentum) momentum_buffers[i].bump_version();
  }
}

}  // namespace iris
