// Backend comparison for 2-D pooling: max (values, argmax indices), average (padding,
// ceil mode, count_include_pad, divisor_override) and adaptive average, forward and
// backward on the CUDA device (emulated in CI, real under `ctest -L cuda`) against the
// CPU. Both backends sum in the same order (window order forward, output order backward),
// so results are compared exactly, overlapping windows included.
#include <cmath>
#include <functional>

#include "autograd/conv.h"
#include "kernels/pool.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

using PoolFn = std::function<Tensor(const Tensor&)>;

// f on both backends from the same input; view (transpose, slice) runs before f so the
// op layer sees a non-dense input. Compares the output and the input gradient.
void compare(const char* what, const Tensor& x0, const PoolFn& view, const PoolFn& f,
             uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << what << " x " << x0.desc());
  Tensor xc = x0.detach().set_requires_grad(true);
  Tensor xg = x0.to(kCuda).detach().set_requires_grad(true);
  Tensor yc = f(view(xc)), yg = f(view(xg));
  ASSERT_TRUE(yg.device().is_cuda());
  EXPECT_CLOSE(yg.to(Device::cpu()), yc, 0, 0) << "forward";
  const Tensor dy = randn_seeded(yc.shape(), seed, x0.dtype());
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  EXPECT_CLOSE(xg.grad().to(Device::cpu()), xc.grad(), 0, 0) << "backward";
}

const PoolFn kDense = [](const Tensor& t) { return t; };
const PoolFn kSwapHW = [](const Tensor& t) { return t.transpose(2, 3); };

TEST(BackendPool, MaxPoolMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 10;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({2, 3, 11, 13}, seed++, dt);
    compare(
        "3x2 s(2,3) p1", x, kDense,
        [](const Tensor& t) {
          return max_pool2d(t, {3, 2}, std::array<int64_t, 2>{2, 3}, {1, 1});
        },
        seed++);
    // Overlapping windows (stride 1): many outputs route to one input.
    compare(
        "3x3 s1 p1 d(2,1) ceil", x, kSwapHW,
        [](const Tensor& t) {
          return max_pool2d(t, {3, 3}, std::array<int64_t, 2>{1, 1}, {1, 1}, {2, 1}, true);
        },
        seed++);
    compare(
        "2x2 ceil", x, kDense,
        [](const Tensor& t) {
          return max_pool2d(t, {2, 2}, std::nullopt, {0, 0}, {1, 1}, true);
        },
        seed++);
  }
}

TEST(BackendPool, MaxPoolIndicesTiesAndNan) {
  IRIS_REQUIRE_CUDA();
  // Few distinct values: ties everywhere (the first maximum wins), and one NaN.
  std::vector<float> v = randn_seeded({2, 2, 9, 10}, 30, DType::f32).to_vector<float>();
  for (float& e : v) e = std::round(e);
  v[17] = std::nanf("");
  const Tensor x = Tensor::from_vector(v, {2, 2, 9, 10});
  for (bool ceil : {false, true}) {
    const auto [yc, ic] =
        max_pool2d_with_indices(x, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1}, {1, 1}, ceil);
    const auto [yg, ig] = max_pool2d_with_indices(x.to(kCuda), {3, 3}, std::array<int64_t, 2>{2, 2},
                                                  {1, 1}, {1, 1}, ceil);
    EXPECT_CLOSE(yg.to(Device::cpu()), yc, 0, 0);
    EXPECT_EQ(ig.to_vector<int64_t>(), ic.to_vector<int64_t>());
  }
  compare(
      "ties, stride 1", x, kDense,
      [](const Tensor& t) {
        return max_pool2d(t, {2, 3}, std::array<int64_t, 2>{1, 1});
      },
      31);
}

TEST(BackendPool, AvgPoolMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 40;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({2, 3, 10, 9}, seed++, dt);
    compare(
        "3x2 s2 p1", x, kDense,
        [](const Tensor& t) {
          return avg_pool2d(t, {3, 2}, std::array<int64_t, 2>{2, 2}, {1, 1});
        },
        seed++);
    compare(
        "3x3 s1 p1 exclude pad ceil", x, kSwapHW,
        [](const Tensor& t) {
          return avg_pool2d(t, {3, 3}, std::array<int64_t, 2>{1, 2}, {1, 1}, true, false);
        },
        seed++);
    compare(
        "3x3 s2 ceil divisor 5", x, kDense,
        [](const Tensor& t) {
          return avg_pool2d(t, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 0}, true, true, 5);
        },
        seed++);
  }
}

TEST(BackendPool, AdaptiveAvgPoolMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 60;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({2, 3, 10, 7}, seed++, dt);
    for (std::array<int64_t, 2> os : {std::array<int64_t, 2>{4, 3}, {13, 5}, {1, 1}, {10, 7}}) {
      compare(
          "adaptive", x, kDense, [os](const Tensor& t) { return adaptive_avg_pool2d(t, os); },
          seed++);
    }
    compare(
        "adaptive, transposed", x, kSwapHW,
        [](const Tensor& t) {
          return adaptive_avg_pool2d(t, {3, 4});
        },
        seed++);
  }
}

TEST(BackendPool, UnbatchedAndManyPlanes) {
  IRIS_REQUIRE_CUDA();
  // [C, H, W] input; and more planes than one block of warps covers in the max backward.
  compare(
      "unbatched max", randn_seeded({3, 9, 8}, 80, DType::f32), kDense,
      [](const Tensor& t) {
        return max_pool2d(t, {2, 2});
      },
      81);
  compare(
      "unbatched avg", randn_seeded({3, 9, 8}, 82, DType::f64), kDense,
      [](const Tensor& t) {
        return avg_pool2d(t, {3, 3}, std::array<int64_t, 2>{2, 2});
      },
      83);
  compare(
      "many planes", randn_seeded({5, 7, 4, 5}, 84, DType::f32), kDense,
      [](const Tensor& t) {
        return max_pool2d(t, {2, 2}, std::array<int64_t, 2>{1, 1});
      },
      85);
}

TEST(BackendPool, MaxBackwardSkipsOutOfPlaneIndices) {
  IRIS_REQUIRE_CUDA();
  // Direct kernel call: indices outside the plane (-1, H * W) get no gradient, as on the CPU.
  const Tensor dout = randn_seeded({1, 2, 2, 3}, 90, DType::f64);
  const Tensor idx =
      Tensor::from_vector<int64_t>({0, 5, 5, -1, 20, 3, 1, 1, 1, 2, 0, 19}, {1, 2, 2, 3});
  Tensor dc = Tensor::empty({1, 2, 4, 5}, DType::f64);
  Tensor dg = Tensor::empty({1, 2, 4, 5}, DType::f64, kCuda);
  kernels::max_pool2d_backward_table().get(Device::cpu())(dout, idx, dc);
  kernels::max_pool2d_backward_table().get(kCuda)(dout.to(kCuda), idx.to(kCuda), dg);
  EXPECT_CLOSE(dg.to(Device::cpu()), dc, 0, 0);
}

TEST(BackendPool, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor ints = Tensor::from_vector(std::vector<int32_t>(32, 1), {1, 2, 4, 4}, kCuda);
  EXPECT_IRIS_ERROR(max_pool2d(ints, {2, 2}), "max_pool2d");
  EXPECT_IRIS_ERROR(avg_pool2d(ints, {2, 2}), "avg_pool2d");
  EXPECT_IRIS_ERROR(adaptive_avg_pool2d(ints, {2, 2}), "adaptive_avg_pool2d");
  const Tensor x = randn_seeded({1, 2, 4, 4}, 6, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(max_pool2d(x, {2, 2}, std::nullopt, {2, 2}), "max_pool2d: padding");
}

}  // namespace
}  // namespace iris
