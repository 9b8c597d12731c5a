#include "nn/layers_linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace iris::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen)
    : Module("Linear"), in_features(in), out_features(out) {
  IRIS_CHECK(in > 0 && out > 0, "Linear: in_features ", in, " and out_features ", out,
             " must be positive");
  weight = register_parameter("weight", empty({out, in}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (with_bias) {
    bias = register_parameter("bias", empty({out}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  IRIS_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features, repr(), ": input ",
             x.defined() ? x.desc() : "undefined", " does not end in ", in_features, " features");
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return detail::cat("in_features=", in_features, ", out_features=", out_features,
                     ", bias=", bias.defined() ? "true" : "false");
}

Flatten::Flatten(int64_t start, int64_t end) : Module("Flatten"), start_dim(start), end_dim(end) {}

std::string Flatten::extra_repr() const {
  return detail::cat("start_dim=", start_dim, ", end_dim=", end_dim);
}

}  // namespace iris::nn
