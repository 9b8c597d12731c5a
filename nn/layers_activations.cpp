#include "nn/layers_activations.h"

#include "autograd/ops.h"

namespace iris::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor SiLU::forward(const Tensor& x) { return silu(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

GELU::GELU(std::string approx) : Module("GELU"), approximate(std::move(approx)) {
  IRIS_CHECK(approximate == "none" || approximate == "tanh",
             "GELU: approximate must be 'none' or 'tanh', got '", approximate, "'");
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate == "tanh"); }

Dropout::Dropout(double prob, Generator* g) : Module("Dropout"), p(prob), gen(g) {
  IRIS_CHECK(p >= 0 && p <= 1, "Dropout: probability has to be between 0 and 1, but got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), gen); }

std::string Dropout::extra_repr() const { return detail::cat("p=", p); }

}  // namespace iris::nn
