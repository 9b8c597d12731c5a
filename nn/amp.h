#pragma once
// Mixed precision, part 2: dynamic loss scaling for float16 (torch.cuda.amp.GradScaler).
// float16 flushes gradients below ~6e-8 to zero; scaling the loss by S scales every
// gradient by S, and unscaling before the optimizer step restores them. When a step's
// gradients overflow (inf/NaN), the step is skipped and S halves; after growth_interval
// clean steps S doubles.
//
//   nn::GradScaler scaler;
//   scaler.scale(loss).backward();
//   scaler.unscale_(opt);                 // optional: before clip_grad_norm_
//   nn::clip_grad_norm_(params, 1.0);
//   scaler.step(opt);                     // skipped when a gradient is not finite
//   scaler.update();
//
// bfloat16 has float32's range and needs no scaling (a disabled scaler passes through).
#include <cstdint>
#include <map>
#include <string>

#include "core/tensor.h"
#include "nn/optim.h"

namespace iris::nn {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  // loss * scale (the loss itself when disabled).
  Tensor scale(const Tensor& loss) const;
  // Divides the optimizer's gradients by the scale, in place, and records whether any is
  // not finite. Once per step: a second call before update() is an error.
  void unscale_(Optimizer& optimizer);
  // unscale_ (if not done yet), then optimizer.step() unless a gradient was not finite.
  // Returns whether the optimizer stepped.
  bool step(Optimizer& optimizer);
  // Adjusts the scale from this step's outcome; call once per step, after step().
  void update();

  double get_scale() const { return scale_; }
  bool enabled() const { return options_.enabled; }
  int64_t skipped_steps() const { return skipped_; }

  // "scale", "growth_tracker" (float64 0-dim): saved with training checkpoints.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;  // clean steps since the scale last changed
  int64_t skipped_ = 0;
  enum class Stage { ready, unscaled, stepped } stage_ = Stage::ready;
  bool found_inf_ = false;
};

}  // namespace iris::nn
