#include "nn/init.h"

#include <cmath>

#include "autograd/ops.h"

namespace iris::nn::init {
namespace {

void check(const Tensor& t, const char* op) {
  IRIS_CHECK(t.defined() && is_floating(t.dtype()), "init.", op,
             ": expected a floating-point tensor, got ", t.defined() ? t.desc() : "undefined");
}

void assign(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  copy_(t, values);
}

int64_t fan(const Tensor& t, std::string_view mode, const char* op) {
  const Fans f = fan_in_and_fan_out(t);
  IRIS_CHECK(mode == "fan_in" || mode == "fan_out", "init.", op,
             ": mode must be fan_in or fan_out, got '", mode, "'");
  const int64_t n = mode == "fan_in" ? f.fan_in : f.fan_out;
  IRIS_CHECK(n > 0, "init.", op, ": zero ", mode, " for ", t.desc());
  return n;
}

}  // namespace

Fans fan_in_and_fan_out(const Tensor& t) {
  IRIS_CHECK(t.defined() && t.dim() >= 2, "init: fan in and fan out need at least 2 dims, got ",
             t.defined() ? t.desc() : "undefined");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(std::string_view nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  IRIS_FAIL("init.calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
}

void uniform_(const Tensor& t, double lo, double hi, Generator* gen) {
  check(t, "uniform_");
  IRIS_CHECK(lo <= hi, "init.uniform_: lower bound ", lo, " > upper bound ", hi);
  assign(t, uniform(t.shape(), lo, hi, t.dtype(), t.device(), gen));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  check(t, "normal_");
  IRIS_CHECK(std >= 0, "init.normal_: negative std ", std);
  NoGradGuard no_grad;
  Tensor z = randn(t.shape(), t.dtype(), t.device(), gen);
  if (std != 1.0) z = z * std;
  if (mean != 0.0) z = z + mean;
  copy_(t, z);
}

void constant_(const Tensor& t, double value) {
  check(t, "constant_");
  NoGradGuard no_grad;
  fill_(t, value);
}

void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

void kaiming_uniform_(const Tensor& t, double a, std::string_view mode,
                      std::string_view nonlinearity, Generator* gen) {
  check(t, "kaiming_uniform_");
  const double std = calculate_gain(nonlinearity, a) /
                     std::sqrt(static_cast<double>(fan(t, mode, "kaiming_uniform_")));
  const double bound = std::sqrt(3.0) * std;
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& t, double a, std::string_view mode,
                     std::string_view nonlinearity, Generator* gen) {
  check(t, "kaiming_normal_");
  const double std = calculate_gain(nonlinearity, a) /
                     std::sqrt(static_cast<double>(fan(t, mode, "kaiming_normal_")));
  normal_(t, 0.0, std, gen);
}

void xavier_uniform_(const Tensor& t, double gain, Generator* gen) {
  check(t, "xavier_uniform_");
  const Fans f = fan_in_and_fan_out(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(const Tensor& t, double gain, Generator* gen) {
  check(t, "xavier_normal_");
  const Fans f = fan_in_and_fan_out(t);
  normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), gen);
}

}  // namespace iris::nn::init
