#pragma once
// Finite-difference gradient check in float64: compares the gradient of
// sum(v * f(inputs)) for a fixed random v with central differences.
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace iris {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0;
  std::string message;  // the first mismatch: input, element, analytic vs numeric
  explicit operator bool() const { return ok; }
};

// `inputs` are float64 CPU tensors; those with requires_grad() are checked.
// `fn` must be deterministic (no dropout without a fixed seed).
GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace iris
