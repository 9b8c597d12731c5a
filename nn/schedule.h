#pragma once
// Learning-rate schedules as torch.optim.lr_scheduler: each parameter group's lr is its
// initial lr times factor(step). Construction applies factor(0) (torch's initial step);
// step() advances by one and applies the next factor. Call it after optimizer.step().
#include <cstdint>
#include <map>
#include <string>

#include "nn/optim.h"

namespace iris::nn {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  LrSchedule(const LrSchedule&) = delete;
  LrSchedule& operator=(const LrSchedule&) = delete;

  virtual double factor(int64_t step) const = 0;
  virtual std::string kind() const = 0;
  // The hyper-parameters, for checkpoints (a resumed schedule must match them).
  virtual std::map<std::string, std::string> config() const = 0;

  void step() { set_last_step(last_step_ + 1); }
  int64_t last_step() const { return last_step_; }
  // Jumps to `step` and applies its lr (used to resume).
  void set_last_step(int64_t step);
  // The lr a group gets at `step` (without applying it).
  double lr_at(int64_t step, size_t group = 0) const;

 protected:
  explicit LrSchedule(Optimizer& optimizer) : optimizer_(&optimizer) {}
  // Applies factor(0); called at the end of each derived constructor.
  void start() { set_last_step(0); }

 private:
  Optimizer* optimizer_;
  int64_t last_step_ = 0;
};

// Linear warm-up from 0, then a half cosine down to min_lr_ratio * initial lr (the
// get_cosine_schedule_with_warmup formula, as a torch LambdaLR):
//   step < warmup:  step / max(1, warmup)
//   otherwise:      m + (1 - m) * 0.5 * (1 + cos(pi * p)),  p = min(1, (step - warmup) /
//                   max(1, total - warmup)), m = min_lr_ratio
// It stays at m after total_steps.
class CosineWarmupSchedule : public LrSchedule {
 public:
  CosineWarmupSchedule(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                       double min_lr_ratio = 0.0);
  double factor(int64_t step) const override;
  std::string kind() const override { return "CosineWarmup"; }
  std::map<std::string, std::string> config() const override;
  int64_t warmup_steps, total_steps;
  double min_lr_ratio;
};

// torch.optim.lr_scheduler.StepLR: gamma ^ floor(step / step_size).
class StepSchedule : public LrSchedule {
 public:
  StepSchedule(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double factor(int64_t step) const override;
  std::string kind() const override { return "Step"; }
  std::map<std::string, std::string> config() const override;
  int64_t step_size;
  double gamma;
};

}  // namespace iris::nn
