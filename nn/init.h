#pragma once
// Parameter initialisation as torch.nn.init: the same distributions, bounds and fan
// rules, drawn from an iris::Generator (the default generator when null). Each writes
// in place (under NoGradGuard) and bumps the tensor's version.
#include <cstdint>
#include <string_view>

#include "core/rng.h"
#include "core/tensor.h"

namespace iris::nn::init {

struct Fans {
  int64_t fan_in = 0;
  int64_t fan_out = 0;
};
// torch's _calculate_fan_in_and_fan_out: dim 1 and dim 0 times the receptive field
// (the product of the dims after the first two); needs at least 2 dims.
Fans fan_in_and_fan_out(const Tensor& t);
// torch.nn.init.calculate_gain: "linear", "conv2d", "sigmoid", "tanh", "relu",
// "leaky_relu" (param = negative slope), "selu".
double calculate_gain(std::string_view nonlinearity, double param = 0.01);

void uniform_(const Tensor& t, double lo = 0.0, double hi = 1.0, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);
// mode: "fan_in" or "fan_out". bound = gain * sqrt(3 / fan).
void kaiming_uniform_(const Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                      std::string_view nonlinearity = "leaky_relu", Generator* gen = nullptr);
void kaiming_normal_(const Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                     std::string_view nonlinearity = "leaky_relu", Generator* gen = nullptr);
// bound = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);
void xavier_normal_(const Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace iris::nn::init
