#pragma once
// Optimizers over named parameters with torch.optim's update rules (the fused
// iris::adamw_step / iris::sgd_step), parameter groups, state for checkpoints, and
// clipping by the global gradient norm. Gradient accumulation needs nothing here: call
// backward several times (gradients add up in .grad()), then step() and zero_grad().
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nn/module.h"

namespace iris::nn {

// A set of parameters sharing hyper-parameters; unset values come from the optimizer.
struct ParamGroup {
  std::vector<NamedTensor> params = {};
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient; parameters without one are skipped
  // (their state does not advance), as in torch.
  virtual void step() = 0;
  void zero_grad(bool set_to_none = true);
  virtual std::string kind() const = 0;  // "AdamW", "SGD"

  size_t num_groups() const { return groups_.size(); }
  double lr(size_t group = 0) const;
  void set_lr(double lr);  // every group
  void set_lr(size_t group, double lr);
  // The lr a group was built with: the base that LR schedules scale.
  double initial_lr(size_t group = 0) const;
  double weight_decay(size_t group = 0) const;
  std::vector<NamedTensor> named_parameters() const;

  // Everything step() depends on, as tensors: "group.<g>.lr" / ".initial_lr" /
  // ".weight_decay" (float64 0-dim) and "<param name>.<buffer>" per parameter with state.
  std::vector<NamedTensor> state_dict() const;
  // Restores state_dict() output exactly. Every name must be known and every tensor must
  // match its parameter; throws naming the tensor otherwise (nothing changes then).
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  struct Group {
    std::vector<NamedTensor> params;
    double lr, initial_lr, weight_decay;
  };
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, const char* kind);
  // Per-parameter state tensors, by buffer name ("exp_avg", "step", ...), in flat
  // parameter order (group by group); an empty map: no state yet.
  std::vector<std::map<std::string, Tensor>> state_;
  std::vector<Group> groups_;

 private:
  // The buffers a parameter's state holds once it exists, and how each must look.
  virtual std::vector<std::string> state_buffer_names() const = 0;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool maximize = false;
};

// torch.optim.AdamW. State per parameter: step (int64 0-dim), exp_avg, exp_avg_sq.
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opt = {});
  AdamW(const Module& module, AdamWOptions opt = {});
  void step() override;
  std::string kind() const override { return "AdamW"; }
  AdamWOptions options;

 private:
  std::vector<std::string> state_buffer_names() const override;
};

struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// torch.optim.SGD. State per parameter (with momentum only): momentum_buffer.
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SgdOptions opt = {});
  SGD(const Module& module, SgdOptions opt = {});
  void step() override;
  std::string kind() const override { return "SGD"; }
  SgdOptions options;

 private:
  std::vector<std::string> state_buffer_names() const override;
};

// torch.nn.utils.clip_grad_norm_: the norm (norm_type 2, inf or any p > 0) of all the
// gradients together; when it exceeds max_norm every gradient is scaled in place by
// max_norm / (norm + 1e-6). Returns the norm before clipping (0 without gradients).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

}  // namespace iris::nn
