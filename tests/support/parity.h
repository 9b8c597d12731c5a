#pragma once
// C++ side of the PyTorch parity tests (see tests/parity/torch_parity.py).
//
// To add a family: write tests/parity/cases_<family>.py with `cases()` yielding
// torch_parity.Case(name, fn, inputs, attrs), and tests/parity/test_parity_<family>.cpp:
//
//   TEST(ParityNorm, LayerNorm) {
//     for (const auto& c : parity_cases("norm", "layer_norm")) {   // cases whose name starts so
//       EXPECT_PARITY(c, [](const ParityCase& c) {
//         return std::vector<Tensor>{layer_norm(c.in("x"), {c.attr_int("d")}, c.in("w"), c.in("b"))};
//       });
//     }
//   }
//
// The python script runs once per test binary (cached in a temporary folder).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/safetensors.h"
#include "tests/support/testing.h"

namespace iris::testing {

class ParityCase {
 public:
  ParityCase(std::string name, Safetensors file);
  const std::string& name() const { return name_; }
  // Input `name` as saved by torch (a fresh float32 leaf requiring grad when torch computed
  // its gradient; the same tensor for every call within one check).
  Tensor in(const std::string& name) const;
  bool has_in(const std::string& name) const;
  Tensor expected(const std::string& key) const { return file_.at(key); }
  bool has(const std::string& key) const { return file_.has(key); }
  // Inputs for which torch computed a gradient.
  std::vector<std::string> grad_names() const;
  std::string attr(const std::string& key) const;
  double attr_double(const std::string& key) const { return std::stod(attr(key)); }
  int64_t attr_int(const std::string& key) const { return std::stoll(attr(key)); }
  bool attr_bool(const std::string& key) const { return attr(key) == "True" || attr(key) == "1"; }
  int outputs() const { return static_cast<int>(attr_int("outputs")); }
  void reset_inputs() const { leaves_.clear(); }

 private:
  std::string name_;
  Safetensors file_;
  mutable std::map<std::string, Tensor> leaves_;
};

// All cases of tests/parity/cases_<family>.py whose name starts with `prefix`.
std::vector<const ParityCase*> parity_cases(const std::string& family,
                                            const std::string& prefix = "");

using ParityFn = std::function<std::vector<Tensor>(const ParityCase&)>;
// Compares fn's outputs with torch's, then the gradients of sum(out_i * proj_i).
::testing::AssertionResult check_parity(const ParityCase& c, const ParityFn& fn, double rtol = 1e-4,
                                        double atol = 1e-5);

}  // namespace iris::testing

#define EXPECT_PARITY(c, ...) EXPECT_TRUE(::iris::testing::check_parity(*(c), __VA_ARGS__)) \
  << "case " << (c)->name()
