// Elementwise ops, reductions and views against PyTorch.
#include <functional>
#include <map>

#include "tests/support/parity.h"

namespace iris::testing {
namespace {

TEST(ParityCore, Binary) {
  const std::map<std::string, std::function<Tensor(const Tensor&, const Tensor&)>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div},
      {"maximum", maximum}, {"minimum", minimum},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }}};
  for (const ParityCase* c : parity_cases("core", "binary_")) {
    auto fn = ops.at(c->attr("op"));
    EXPECT_PARITY(c, [&](const ParityCase& c) {
      return std::vector<Tensor>{fn(c.in("a"), c.in("b"))};
    });
  }
}

TEST(ParityCore, Unary) {
  const std::map<std::string, std::function<Tensor(const Tensor&)>> ops = {
      {"neg", neg}, {"abs", abs}, {"exp", exp}, {"tanh", tanh}, {"sigmoid", sigmoid},
      {"relu", relu}, {"silu", silu}, {"sin", sin}, {"cos", cos}, {"square", square},
      {"expm1", expm1}, {"log", log}, {"sqrt", sqrt}, {"rsqrt", rsqrt},
      {"reciprocal", reciprocal}, {"log1p", log1p},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }},
      {"pow_scalar", [](const Tensor& x) { return pow(x, 2.5); }},
      {"sign", sign}};
  for (const ParityCase* c : parity_cases("core", "unary_")) {
    auto fn = ops.at(c->attr("op"));
    EXPECT_PARITY(c, [&](const ParityCase& c) { return std::vector<Tensor>{fn(c.in("x"))}; });
  }
}

TEST(ParityCore, ReductionsAndViews) {
  const std::map<std::string, std::function<Tensor(const Tensor&)>> ops = {
      {"reduce_sum_all", [](const Tensor& x) { return sum(x); }},
      {"reduce_sum_dims", [](const Tensor& x) { return sum(x, {0, 2}, true); }},
      {"reduce_mean_last", [](const Tensor& x) { return mean(x, {-1}); }},
      {"reduce_var_1", [](const Tensor& x) { return var(x, {1}); }},
      {"reduce_var_all_biased", [](const Tensor& x) { return var(x, {}, 0); }},
      {"reduce_amax_0", [](const Tensor& x) { return amax(x, {0}); }},
      {"reduce_amin_2", [](const Tensor& x) { return amin(x, {2}, true); }},
      {"reduce_cumsum_1", [](const Tensor& x) { return cumsum(x, 1); }},
      {"view_permute_reshape",
       [](const Tensor& x) { return x.permute({2, 0, 1}).reshape({4, 6}) * 2.0; }},
      {"view_slice_expand",
       [](const Tensor& x) {
         return sum(x.slice(1, 1, 3).slice(2, 0, 4, 2).unsqueeze(0).expand({2, 2, 2, 2}), {0});
       }},
      {"view_select_narrow_squeeze", [](const Tensor& x) {
         return x.transpose(0, 2).select(1, 2).narrow(0, 1, 2).unsqueeze(1).squeeze(1).flatten()
                    .clone() * 3.0;
       }}};
  int n = 0;
  for (const auto& [name, fn] : ops) {
    for (const ParityCase* c : parity_cases("core", name)) {
      EXPECT_PARITY(c, [&](const ParityCase& c) { return std::vector<Tensor>{fn(c.in("x"))}; });
      ++n;
    }
  }
  EXPECT_EQ(n, static_cast<int>(ops.size()));
}

TEST(ParityCore, MaskedFill) {
  for (const ParityCase* c : parity_cases("core", "masked_fill"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{masked_fill(c.in("x"), c.in("m"), -2.0)};
    });
}

TEST(ParityCore, Where) {
  for (const ParityCase* c : parity_cases("core", "where_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{where(c.in("c"), c.in("a"), c.in("b"))};
    });
  }
}

}  // namespace
}  // namespace iris::testing
