// The tape: accumulation, shared sub-graphs, retain_graph, no-grad, detach,
// saved-tensor versions.
#include <cmath>

#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;

TEST(Engine, ScalarBackwardAndAccumulation) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor y = sum(mul(x, x));
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4, 6}));
  sum(x * 3.0).backward();  // gradients accumulate across backward calls
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_EQ(y.grad_fn()->name(), "sum");
}

TEST(Engine, SharedSubgraphRunsOnceWithSummedGradient) {
  Tensor x = param({4}, 1);
  Tensor h = exp(x);                 // used twice below
  Tensor y = sum(add(mul(h, h), h));  // d/dx = (2 e^2x + e^x)
  y.backward();
  const std::vector<double> xv = x.to_vector<double>();
  const std::vector<double> g = x.grad().to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i)
    EXPECT_NEAR(g[i], 2 * std::exp(2 * xv[i]) + std::exp(xv[i]), 1e-12);
}

TEST(Engine, BackwardWithExplicitGradient) {
  Tensor x = param({2, 3}, 2);
  Tensor y = x * 2.0;
  EXPECT_IRIS_ERROR(y.backward(), "scalar");
  y.backward(ones({2, 3}, DType::f64) * 0.5);
  EXPECT_CLOSE(x.grad(), ones({2, 3}, DType::f64), 0, 1e-15);
  EXPECT_IRIS_ERROR(y.backward(ones({3}, DType::f64), true), "does not match");
}

TEST(Engine, FreedGraphIsAnErrorUnlessRetained) {
  Tensor x = param({3}, 3);
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // second run allowed because the first retained
  EXPECT_IRIS_ERROR(y.backward(), "already freed");
}

TEST(Engine, NoGradAndDetachRecordNothing) {
  Tensor x = param({3}, 4);
  {
    NoGradGuard ng;
    Tensor y = exp(x);
    EXPECT_FALSE(y.requires_grad());
  }
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), x.storage());
  Tensor y = sum(mul(exp(x), d));
  y.backward();
  // d is a constant: grad = exp(x) * x
  const std::vector<double> xv = x.to_vector<double>(), g = x.grad().to_vector<double>();
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(g[i], std::exp(xv[i]) * xv[i], 1e-12);
}

TEST(Engine, InPlaceChangeOfASavedTensorIsDetected) {
  Tensor x = param({3}, 5);
  Tensor h = x * 1.0;
  Tensor y = sum(mul(h, h));  // saves h
  {
    NoGradGuard ng;
    fill_(h, 2.0);  // modifies h after it was saved
  }
  EXPECT_IRIS_ERROR(y.backward(), "modified by an in-place operation");
  // In-place writes to tensors that require grad are refused while recording.
  EXPECT_IRIS_ERROR(fill_(x, 1.0), "fill_");
}

TEST(Engine, LeafRulesAndErrors) {
  Tensor x = param({2}, 6);
  Tensor y = x * 2.0;
  EXPECT_IRIS_ERROR(y.set_requires_grad(true), "leaf");
  Tensor i = arange(3);
  EXPECT_IRIS_ERROR(i.set_requires_grad(true), "floating");
  Tensor c = ones({}, DType::f64);
  EXPECT_IRIS_ERROR(c.backward(), "does not require grad");
}

TEST(Engine, ViewsPropagateGradients) {
  Tensor x = param({2, 3, 4}, 7);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const Tensor& x = in[0];
        Tensor a = x.permute({2, 0, 1}).reshape({4, 6});
        Tensor b = x.slice(2, 1, 4, 2).transpose(0, 1).flatten();
        Tensor c = x.select(1, 2).unsqueeze(1).expand({2, 5, 4});
        Tensor d = x.narrow(0, 1, 1).squeeze(0).contiguous().view({12});
        return std::vector<Tensor>{a, b, c, d, x.clone()};
      },
      {x});
  // dtype conversions pass the gradient back in the source dtype
  Tensor y = x.to(DType::f32);
  sum(y * 2.0).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f64);
}

}  // namespace
}  // namespace iris
