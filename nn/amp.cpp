#include "nn/amp.h"

#include <cmath>

#include "autograd/ops.h"
#include "core/error.h"

namespace iris::nn {

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  IRIS_CHECK(options.init_scale > 0 && std::isfinite(options.init_scale) &&
                 options.growth_factor > 1 && options.backoff_factor > 0 &&
                 options.backoff_factor < 1 && options.growth_interval > 0,
             "GradScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
             "growth_interval > 0; got ",
             options.init_scale, ", ", options.growth_factor, ", ", options.backoff_factor, ", ",
             options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  return options_.enabled ? loss * scale_ : loss;
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  IRIS_CHECK(stage_ == Stage::ready, "GradScaler.unscale_: already called since the last update()");
  NoGradGuard no_grad;
  const double inv = 1.0 / scale_;
  // 0 * g is 0 for every finite g and NaN otherwise: one sum per gradient on its device,
  // one host read for all of them.
  Tensor probe;
  for (const auto& [name, p] : optimizer.named_parameters()) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    copy_(g, g * inv);
    Tensor s = sum(g * 0.0).to(DType::f32);
    if (probe.defined() && s.device() != probe.device()) s = s.to(probe.device());
    probe = probe.defined() ? probe + s : s;
  }
  found_inf_ = probe.defined() && !std::isfinite(probe.item());
  stage_ = Stage::unscaled;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  IRIS_CHECK(stage_ != Stage::stepped, "GradScaler.step: already called since the last update()");
  if (stage_ == Stage::ready) unscale_(optimizer);
  stage_ = Stage::stepped;
  if (found_inf_) {
    ++skipped_;
    return false;
  }
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  IRIS_CHECK(stage_ == Stage::stepped, "GradScaler.update: call step() first");
  if (found_inf_) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
  found_inf_ = false;
  stage_ = Stage::ready;
}

std::map<std::string, Tensor> GradScaler::state_dict() const {
  return {{"scale", Tensor::scalar(scale_, DType::f64)},
          {"growth_tracker", Tensor::scalar(static_cast<double>(growth_tracker_), DType::f64)}};
}

void GradScaler::load_state_dict(const std::map<std::string, Tensor>& state) {
  for (const char* key : {"scale", "growth_tracker"})
    IRIS_CHECK(state.count(key) && state.at(key).numel() == 1,
               "GradScaler.load_state_dict: missing or malformed '", key, "'");
  IRIS_CHECK(state.size() == 2, "GradScaler.load_state_dict: unexpected entries (", state.size(),
             " given, expected scale and growth_tracker)");
  const double scale = state.at("scale").item();
  IRIS_CHECK(scale > 0 && std::isfinite(scale), "GradScaler.load_state_dict: bad scale ", scale);
  scale_ = scale;
  growth_tracker_ = static_cast<int64_t>(state.at("growth_tracker").item());
  stage_ = Stage::ready;
  found_inf_ = false;
}

}  // namespace iris::nn
