// Backend comparison for reductions and cumsum: each op through the iris ops on the
// CPU and on the CUDA device (emulated in CI, real under `ctest -L cuda`), forward
// and backward, every dim and dim set, shapes that are not multiples of the warp,
// block or column tile, strided inputs, NaN and ties, integer dtypes.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

using ReduceFn = std::function<Tensor(const Tensor&, const std::vector<int64_t>&)>;

std::vector<std::pair<const char*, ReduceFn>> reduce_ops() {
  return {
      {"sum", [](const Tensor& t, const std::vector<int64_t>& d) { return sum(t, d); }},
      {"mean", [](const Tensor& t, const std::vector<int64_t>& d) { return mean(t, d, true); }},
      {"amax", [](const Tensor& t, const std::vector<int64_t>& d) { return amax(t, d); }},
      {"amin", [](const Tensor& t, const std::vector<int64_t>& d) { return amin(t, d, true); }},
      {"var", [](const Tensor& t, const std::vector<int64_t>& d) { return var(t, d); }},
      {"var0", [](const Tensor& t, const std::vector<int64_t>& d) { return var(t, d, 0); }},
  };
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "{";
  for (int64_t d : dims) s += std::to_string(d) + ",";
  return s + "}";
}

// Forward and backward of every op over `dims` of base.permute(perm), CPU vs device
// (the device sees the permuted strides).
void compare_reduce(const Tensor& base, const std::vector<int64_t>& perm,
                    const std::vector<int64_t>& dims, double rtol, double atol,
                    const std::string& what) {
  for (auto& [name, f] : reduce_ops()) {
    Tensor bc = base.detach().set_requires_grad(true);
    Tensor bg = base.to(kCuda).detach().set_requires_grad(true);
    Tensor yc = f(perm.empty() ? bc : bc.permute(perm), dims);
    Tensor yg = f(perm.empty() ? bg : bg.permute(perm), dims);
    EXPECT_TRUE(yg.device().is_cuda());
    EXPECT_CLOSE(yg, yc, rtol, atol) << name << " over " << dims_str(dims) << " " << what;
    const Tensor dy = randn_seeded(yc.shape(), 11, base.dtype());
    yc.backward(dy);
    yg.backward(dy.to(kCuda));
    EXPECT_CLOSE(bg.grad(), bc.grad(), rtol, atol)
        << name << " backward over " << dims_str(dims) << " " << what;
  }
}

TEST(BackendReduce, EveryDimSetMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {}};
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    const Tensor x = randn_seeded({5, 37, 3}, 1, dt);  // rows, columns, and a non-block set
    for (const auto& dims : dim_sets) compare_reduce(x, {}, dims, tol, tol, dtype_name(dt));
    // a strided (permuted) input
    const Tensor b = randn_seeded({3, 5, 9}, 2, dt);
    for (const auto& dims : dim_sets) compare_reduce(b, {2, 0, 1}, dims, tol, tol, "permuted");
  }
}

TEST(BackendReduce, LongRowsAndLongColumns) {
  IRIS_REQUIRE_CUDA();
  // rows longer than a warp's share (block per row) and a tall column reduction
  const Tensor rows = randn_seeded({3, 1500}, 3, DType::f64);
  compare_reduce(rows, {}, {1}, 1e-12, 1e-12, "long rows");
  const Tensor cols = randn_seeded({301, 40}, 4, DType::f32);
  compare_reduce(cols, {}, {0}, 2e-5, 2e-5, "long columns");
  const Tensor whole = randn_seeded({2000}, 5, DType::f32);
  compare_reduce(whole, {}, {0}, 2e-5, 2e-5, "whole vector");
  // few column blocks over a long R: R split in chunks (blockIdx.z), then folded
  const Tensor tall = randn_seeded({5000, 3}, 8, DType::f64);
  compare_reduce(tall, {}, {0}, 1e-11, 1e-11, "split columns");
  compare_reduce(randn_seeded({2, 4099, 5}, 9, DType::f32), {}, {1}, 1e-4, 1e-4,
                 "split middle columns");
  EXPECT_EQ(argmax(tall.to(kCuda), 0).to_vector<int64_t>(), argmax(tall, 0).to_vector<int64_t>());
  EXPECT_EQ(argmin(tall.to(kCuda), 0).to_vector<int64_t>(), argmin(tall, 0).to_vector<int64_t>());
  // few rows this long are split in chunks (two stages)
  const Tensor split = randn_seeded({2, 70001}, 6, DType::f64);
  compare_reduce(split, {}, {1}, 1e-11, 1e-11, "split rows");
  compare_reduce(split, {}, {0, 1}, 1e-11, 1e-11, "split whole");
  const Tensor split32 = randn_seeded({70001}, 7, DType::f32);
  compare_reduce(split32, {}, {0}, 1e-4, 1e-4, "split fp32");
  EXPECT_EQ(argmax(split.to(kCuda), 1).to_vector<int64_t>(), argmax(split, 1).to_vector<int64_t>());
  EXPECT_EQ(argmin(split32.to(kCuda), 0).to_vector<int64_t>(),
            argmin(split32, 0).to_vector<int64_t>());
}

TEST(BackendReduce, ArgmaxArgminEveryDim) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f64, DType::f32}) {
    const Tensor x = randn_seeded({4, 33, 6}, 6, dt);
    for (int64_t d = 0; d < 3; ++d) {
      EXPECT_EQ(argmax(x.to(kCuda), d).to_vector<int64_t>(), argmax(x, d).to_vector<int64_t>())
          << "argmax dim " << d;
      EXPECT_EQ(argmin(x.to(kCuda), d, true).to_vector<int64_t>(),
                argmin(x, d, true).to_vector<int64_t>())
          << "argmin dim " << d;
    }
    // strided on the device
    EXPECT_EQ(argmax(x.to(kCuda).transpose(0, 2), 1).to_vector<int64_t>(),
              argmax(x.transpose(0, 2), 1).to_vector<int64_t>());
    const Tensor long_row = randn_seeded({2, 1300}, 7, dt);
    EXPECT_EQ(argmin(long_row.to(kCuda), 1).to_vector<int64_t>(),
              argmin(long_row, 1).to_vector<int64_t>());
  }
}

TEST(BackendReduce, NanAndTiesFollowTheCpu) {
  IRIS_REQUIRE_CUDA();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // ties (first index wins), NaN largest for max and the result of min; rows of
  // 40 span more than one lane each, columns go through the column kernel.
  std::vector<double> v(3 * 40, 1.0);
  v[5] = 7, v[17] = 7, v[30] = -2, v[39] = -2;  // row 0: ties
  v[40 + 3] = nan, v[40 + 20] = nan, v[40 + 7] = 9, v[40 + 8] = -9;  // row 1: NaNs
  v[80 + 39] = nan;                                                  // row 2: a last NaN
  const Tensor x = Tensor::from_vector(v, {3, 40});
  const Tensor xg = x.to(kCuda);
  for (int64_t d = 0; d < 2; ++d) {
    EXPECT_EQ(argmax(xg, d).to_vector<int64_t>(), argmax(x, d).to_vector<int64_t>()) << d;
    EXPECT_EQ(argmin(xg, d).to_vector<int64_t>(), argmin(x, d).to_vector<int64_t>()) << d;
    EXPECT_CLOSE(amax(xg, {d}), amax(x, {d}), 0, 0) << d;
    EXPECT_CLOSE(amin(xg, {d}), amin(x, {d}), 0, 0) << d;
    EXPECT_CLOSE(sum(xg, {d}), sum(x, {d}), 1e-12, 1e-12) << d;
  }
}

TEST(BackendReduce, IntegerDtypes) {
  IRIS_REQUIRE_CUDA();
  const Tensor i = arange(7 * 45).reshape({7, 45});
  const Tensor ig = i.to(kCuda);
  for (int64_t d = 0; d < 2; ++d) {
    EXPECT_EQ(sum(ig, {d}).to_vector<int64_t>(), sum(i, {d}).to_vector<int64_t>()) << d;
    EXPECT_EQ(amax(ig, {d}).to_vector<int64_t>(), amax(i, {d}).to_vector<int64_t>()) << d;
    EXPECT_EQ(argmin(ig, d).to_vector<int64_t>(), argmin(i, d).to_vector<int64_t>()) << d;
    EXPECT_EQ(cumsum(ig, d).to_vector<int64_t>(), cumsum(i, d).to_vector<int64_t>()) << d;
  }
  const Tensor i32 = i.to(DType::i32);
  EXPECT_EQ(sum(i32.to(kCuda), {1}).to_vector<int64_t>(), sum(i32, {1}).to_vector<int64_t>());
  EXPECT_EQ(mean(i32.to(kCuda), {0}).to_vector<int64_t>(), mean(i32, {0}).to_vector<int64_t>());
}

TEST(BackendReduce, EmptyReductions) {
  IRIS_REQUIRE_CUDA();
  const Tensor e = Tensor::empty({3, 0}, DType::f32, kCuda);
  EXPECT_CLOSE(sum(e, {1}), zeros({3}), 0, 0);
  EXPECT_TRUE(std::isnan(mean(e, {1}).to_vector<float>()[0]));
  EXPECT_IRIS_ERROR(amax(e, {1}), "cannot reduce an empty dimension");
  EXPECT_EQ(sum(Tensor::empty({0, 4}, DType::f32, kCuda), {1}).numel(), 0);
}

TEST(BackendReduce, CumsumEveryDimForwardAndBackward) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    const Tensor x = randn_seeded({4, 37, 3}, 8, dt);
    const Tensor xt = randn_seeded({5, 4, 3}, 9, dt);  // used permuted (strided)
    const Tensor row = randn_seeded({2, 100}, 10, dt);  // several 32-element chunks
    for (const Tensor* in : {&x, &xt, &row})
      for (int64_t d = 0; d < in->dim(); ++d) {
        const bool permuted = in == &xt;
        Tensor xc = in->detach().set_requires_grad(true);
        Tensor xg = in->to(kCuda).detach().set_requires_grad(true);
        Tensor yc = cumsum(permuted ? xc.permute({1, 2, 0}) : xc, d);
        Tensor yg = cumsum(permuted ? xg.permute({1, 2, 0}) : xg, d);
        EXPECT_CLOSE(yg, yc, tol, tol) << "cumsum dim " << d;
        const Tensor dy = randn_seeded(yc.shape(), 12, dt);
        yc.backward(dy);
        yg.backward(dy.to(kCuda));
        EXPECT_CLOSE(xg.grad(), xc.grad(), tol, tol) << "cumsum backward dim " << d;
      }
  }
}

}  // namespace
}  // namespace iris
