#include "nn/optim.h"

#include <cmath>
#include <limits>
#include <set>

#include "autograd/ops.h"

namespace iris::nn {
namespace {

std::vector<ParamGroup> one_group(const Module& m) {
  ParamGroup g;
  g.params = m.named_parameters();
  return {g};
}

Tensor scalar_f64(double v) { return Tensor::scalar(v, DType::f64); }

}  // namespace

// ---- Optimizer ----

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay,
                     const char* kind) {
  IRIS_CHECK(!groups.empty(), kind, ": no parameter groups");
  std::set<std::string> names;
  std::set<const TensorImpl*> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& pg = groups[g];
    const double glr = pg.lr.value_or(lr), gwd = pg.weight_decay.value_or(weight_decay);
    IRIS_CHECK(glr >= 0, kind, ": invalid learning rate ", glr, " (group ", g, ")");
    IRIS_CHECK(gwd >= 0, kind, ": invalid weight_decay ", gwd, " (group ", g, ")");
    for (const auto& [name, p] : pg.params) {
      IRIS_CHECK(p.defined() && p.is_leaf() && is_floating(p.dtype()), kind, ": parameter '", name,
                 "' must be a floating-point leaf tensor, got ",
                 p.defined() ? p.desc() : "undefined");
      IRIS_CHECK(names.insert(name).second, kind, ": parameter name '", name, "' appears twice");
      IRIS_CHECK(seen.insert(p.impl_ptr()).second, kind, ": parameter '", name,
                 "' appears in more than one place");
    }
    groups_.push_back(Group{std::move(pg.params), glr, glr, gwd});
    state_.resize(state_.size() + groups_.back().params.size());
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (const Group& g : groups_)
    for (const auto& [name, p] : g.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none)
        p.set_grad(Tensor());
      else
        zero_(grad);
    }
}

double Optimizer::lr(size_t g) const {
  IRIS_CHECK(g < groups_.size(), kind(), ": no parameter group ", g);
  return groups_[g].lr;
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

void Optimizer::set_lr(size_t g, double lr) {
  IRIS_CHECK(g < groups_.size(), kind(), ": no parameter group ", g);
  IRIS_CHECK(lr >= 0, kind(), ": invalid learning rate ", lr);
  groups_[g].lr = lr;
}

double Optimizer::initial_lr(size_t g) const {
  IRIS_CHECK(g < groups_.size(), kind(), ": no parameter group ", g);
  return groups_[g].initial_lr;
}

double Optimizer::weight_decay(size_t g) const {
  IRIS_CHECK(g < groups_.size(), kind(), ": no parameter group ", g);
  return groups_[g].weight_decay;
}

std::vector<NamedTensor> Optimizer::named_parameters() const {
  std::vector<NamedTensor> out;
  for (const Group& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

std::vector<NamedTensor> Optimizer::state_dict() const {
  std::vector<NamedTensor> out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string k = "group." + std::to_string(g);
    out.emplace_back(k + ".lr", scalar_f64(groups_[g].lr));
    out.emplace_back(k + ".initial_lr", scalar_f64(groups_[g].initial_lr));
    out.emplace_back(k + ".weight_decay", scalar_f64(groups_[g].weight_decay));
  }
  const std::vector<NamedTensor> params = named_parameters();
  for (size_t i = 0; i < params.size(); ++i)
    for (const auto& [buf, t] : state_[i]) out.emplace_back(params[i].first + "." + buf, t);
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::string who = kind() + ".load_state_dict";
  auto get = [&](const std::string& key) -> const Tensor* {
    auto it = state.find(key);
    return it == state.end() ? nullptr : &it->second;
  };
  std::set<std::string> used;
  std::vector<Group> groups = groups_;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string k = "group." + std::to_string(g);
    double* fields[] = {&groups[g].lr, &groups[g].initial_lr, &groups[g].weight_decay};
    const char* names[] = {".lr", ".initial_lr", ".weight_decay"};
    for (int f = 0; f < 3; ++f) {
      const Tensor* t = get(k + names[f]);
      IRIS_CHECK(t, who, ": missing tensor '", k + names[f], "'");
      IRIS_CHECK(t->numel() == 1 && t->dtype() == DType::f64, who, ": tensor '", k + names[f],
                 "' is ", t->desc(), ", expected float64 []");
      *fields[f] = t->item();
      used.insert(k + names[f]);
    }
  }
  const std::vector<NamedTensor> params = named_parameters();
  const std::vector<std::string> buffers = state_buffer_names();
  std::vector<std::map<std::string, Tensor>> loaded(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [pname, p] = params[i];
    size_t present = 0;
    for (const std::string& b : buffers) present += get(pname + "." + b) != nullptr;
    if (present == 0) continue;
    for (const std::string& b : buffers) {
      const std::string key = pname + "." + b;
      const Tensor* t = get(key);
      IRIS_CHECK(t, who, ": missing tensor '", key, "' (other state of '", pname, "' is present)");
      if (b == "step") {
        IRIS_CHECK(t->dtype() == DType::i64 && t->numel() == 1, who, ": tensor '", key, "' is ",
                   t->desc(), ", expected int64 []");
        loaded[i][b] = t->reshape({}).clone();
      } else {
        IRIS_CHECK(t->shape() == p.shape() && t->dtype() == p.dtype(), who, ": tensor '", key,
                   "' is ", t->desc(), ", expected ", dtype_name(p.dtype()), shape_str(p.shape()),
                   " like its parameter");
        NoGradGuard no_grad;
        loaded[i][b] = t->to(p.device()).clone();
      }
      used.insert(key);
    }
  }
  for (const auto& [key, t] : state)
    IRIS_CHECK(used.count(key), who, ": unexpected tensor '", key, "' (", t.desc(), ")");
  groups_ = std::move(groups);
  state_ = std::move(loaded);
}

// ---- AdamW ----

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "AdamW"), options(opt) {
  IRIS_CHECK(opt.eps >= 0, "AdamW: invalid epsilon ", opt.eps);
  IRIS_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1,
             "AdamW: invalid betas (", opt.beta1, ", ", opt.beta2, ")");
}

AdamW::AdamW(const Module& module, AdamWOptions opt) : AdamW(one_group(module), opt) {}

std::vector<std::string> AdamW::state_buffer_names() const {
  return {"step", "exp_avg", "exp_avg_sq"};
}

void AdamW::step() {
  NoGradGuard no_grad;
  size_t flat = 0;
  for (const Group& g : groups_) {
    // Parameters grouped by their step count (all equal unless some skipped a step).
    struct Bucket {
      std::vector<Tensor> params, grads, exp_avg, exp_avg_sq;
    };
    std::map<int64_t, Bucket> buckets;
    for (size_t i = 0; i < g.params.size(); ++i, ++flat) {
      const Tensor& p = g.params[i].second;
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      auto& s = state_[flat];
      if (s.empty()) {
        s["step"] = zeros({}, DType::i64);
        s["exp_avg"] = zeros(p.shape(), p.dtype(), p.device());
        s["exp_avg_sq"] = zeros(p.shape(), p.dtype(), p.device());
      }
      const int64_t step = static_cast<int64_t>(s["step"].item()) + 1;
      fill_(s["step"], static_cast<double>(step));
      Bucket& b = buckets[step];
      b.params.push_back(p);
      b.grads.push_back(grad);
      b.exp_avg.push_back(s["exp_avg"]);
      b.exp_avg_sq.push_back(s["exp_avg_sq"]);
    }
    for (auto& [step, b] : buckets)
      adamw_step(b.params, b.grads, b.exp_avg, b.exp_avg_sq, step, g.lr, options.beta1,
                 options.beta2, options.eps, g.weight_decay, options.maximize);
  }
}

// ---- SGD ----

SGD::SGD(std::vector<ParamGroup> groups, SgdOptions opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "SGD"), options(opt) {
  IRIS_CHECK(opt.momentum >= 0, "SGD: invalid momentum ", opt.momentum);
  IRIS_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
             "SGD: nesterov momentum requires a momentum and zero dampening");
}

SGD::SGD(const Module& module, SgdOptions opt) : SGD(one_group(module), opt) {}

std::vector<std::string> SGD::state_buffer_names() const {
  if (options.momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::step() {
  NoGradGuard no_grad;
  const bool use_momentum = options.momentum != 0;
  size_t flat = 0;
  for (const Group& g : groups_) {
    std::vector<Tensor> params, grads, buffers;
    std::vector<size_t> index;
    for (size_t i = 0; i < g.params.size(); ++i, ++flat) {
      const Tensor& p = g.params[i].second;
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      params.push_back(p);
      grads.push_back(grad);
      index.push_back(flat);
      if (use_momentum) {
        auto it = state_[flat].find("momentum_buffer");
        buffers.push_back(it == state_[flat].end() ? Tensor() : it->second);
      }
    }
    if (params.empty()) continue;
    sgd_step(params, grads, buffers, g.lr, options.momentum, options.dampening, g.weight_decay,
             options.nesterov, options.maximize);
    if (use_momentum)
      for (size_t k = 0; k < index.size(); ++k) state_[index[k]]["momentum_buffer"] = buffers[k];
  }
}

// ---- clipping ----

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  IRIS_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive, got ", norm_type);
  IRIS_CHECK(max_norm >= 0, "clip_grad_norm_: max_norm must be non-negative, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const bool inf = std::isinf(norm_type);
  const DType dt = grads[0].dtype();
  auto vector_norm = [&](const Tensor& t) {
    if (inf) return amax(abs(t));
    if (norm_type == 2.0) return sqrt(sum(square(t)));
    return pow(sum(pow(abs(t), norm_type)), 1.0 / norm_type);
  };
  std::vector<Tensor> norms;
  for (const Tensor& g : grads) {
    IRIS_CHECK(g.dtype() == dt && g.device() == grads[0].device(),
               "clip_grad_norm_: gradients of different dtypes or devices: ", grads[0].desc(),
               " and ", g.desc());
    norms.push_back(vector_norm(g));
  }
  const Tensor total = vector_norm(stack(norms));
  const double total_value = total.item();
  IRIS_CHECK(!error_if_nonfinite || std::isfinite(total_value), "clip_grad_norm_: the total norm ",
             "of order ", norm_type, " of the gradients is non-finite (", total_value, ")");
  const Tensor coef = clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (const Tensor& g : grads) copy_(g, g * coef);
  return total_value;
}

}  // namespace iris::nn
