#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace iris::nn {
namespace {

// Round-trip exact text for a double.
std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void LrSchedule::set_last_step(int64_t step) {
  IRIS_CHECK(step >= 0, kind(), ": negative step ", step);
  last_step_ = step;
  for (size_t g = 0; g < optimizer_->num_groups(); ++g) optimizer_->set_lr(g, lr_at(step, g));
}

double LrSchedule::lr_at(int64_t step, size_t group) const {
  return optimizer_->initial_lr(group) * factor(step);
}

CosineWarmupSchedule::CosineWarmupSchedule(Optimizer& opt, int64_t warmup, int64_t total,
                                           double min_ratio)
    : LrSchedule(opt), warmup_steps(warmup), total_steps(total), min_lr_ratio(min_ratio) {
  IRIS_CHECK(warmup >= 0 && total >= warmup, "CosineWarmupSchedule: need 0 <= warmup_steps (",
             warmup, ") <= total_steps (", total, ")");
  IRIS_CHECK(min_ratio >= 0 && min_ratio <= 1,
             "CosineWarmupSchedule: min_lr_ratio must be in [0, 1], got ", min_ratio);
  start();
}

double CosineWarmupSchedule::factor(int64_t step) const {
  if (step < warmup_steps)
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup_steps) /
                        static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
  const double cosine = std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
  return min_lr_ratio + (1.0 - min_lr_ratio) * cosine;
}

std::map<std::string, std::string> CosineWarmupSchedule::config() const {
  return {{"warmup_steps", std::to_string(warmup_steps)},
          {"total_steps", std::to_string(total_steps)},
          {"min_lr_ratio", exact(min_lr_ratio)}};
}

StepSchedule::StepSchedule(Optimizer& opt, int64_t size, double g)
    : LrSchedule(opt), step_size(size), gamma(g) {
  IRIS_CHECK(size > 0, "StepSchedule: step_size must be positive, got ", size);
  IRIS_CHECK(g > 0, "StepSchedule: gamma must be positive, got ", g);
  start();
}

double StepSchedule::factor(int64_t step) const {
  return std::pow(gamma, static_cast<double>(step / step_size));
}

std::map<std::string, std::string> StepSchedule::config() const {
  return {{"step_size", std::to_string(step_size)}, {"gamma", exact(gamma)}};
}

}  // namespace iris::nn
