// Backend comparison for softmax, log-softmax and cross-entropy: each op through the
// iris ops on the CPU and on the CUDA device (emulated in CI, real under
// `ctest -L cuda`), forward and backward, every dim (rows, long rows, columns),
// shapes that are not multiples of the warp or tile, ignore_index, label smoothing
// and every reduction.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/nn_ops.h"
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

void compare_softmax(const Tensor& x, int64_t dim, bool log, double tol, const std::string& what) {
  const char* name = log ? "log_softmax" : "softmax";
  Tensor xc = x.detach().set_requires_grad(true);
  Tensor xg = x.to(kCuda).detach().set_requires_grad(true);
  Tensor yc = log ? log_softmax(xc, dim) : softmax(xc, dim);
  Tensor yg = log ? log_softmax(xg, dim) : softmax(xg, dim);
  EXPECT_TRUE(yg.device().is_cuda());
  EXPECT_CLOSE(yg, yc, tol, tol) << name << " dim " << dim << " " << what;
  const Tensor dy = randn_seeded(yc.shape(), 21, x.dtype());
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  EXPECT_CLOSE(xg.grad(), xc.grad(), tol, tol) << name << " backward dim " << dim << " " << what;
}

TEST(BackendSoftmax, EveryDimMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-6;
    const Tensor x = randn_seeded({4, 37, 5}, 1, dt) * 3.0;  // columns (dims 0, 1) and rows
    for (bool log : {false, true})
      for (int64_t d = -1; d < 3; ++d) compare_softmax(x, d, log, tol, dtype_name(dt));
  }
}

TEST(BackendSoftmax, LongRowsAndShortRows) {
  IRIS_REQUIRE_CUDA();
  for (bool log : {false, true}) {
    compare_softmax(randn_seeded({3, 1100}, 2, DType::f64), 1, log, 1e-12, "block per row");
    compare_softmax(randn_seeded({3, 1100}, 2, DType::f32), 1, log, 2e-6, "block per row");
    compare_softmax(randn_seeded({19, 5}, 3, DType::f32), 1, log, 2e-6, "short rows");
    compare_softmax(randn_seeded({9, 300}, 4, DType::f32), 0, log, 2e-6, "short columns");
  }
}

TEST(BackendSoftmax, MinusInfinityIsZeroProbability) {
  IRIS_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v(2 * 40);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i % 7);
  v[0] = -inf, v[5] = -inf, v[40 + 39] = -inf;
  const Tensor x = Tensor::from_vector(v, {2, 40});
  EXPECT_CLOSE(softmax(x.to(kCuda), 1), softmax(x, 1), 1e-12, 1e-12);
  // log_softmax is -inf there on both backends (inf - inf is no distance: compare exp)
  EXPECT_CLOSE(exp(log_softmax(x.to(kCuda), 1)), exp(log_softmax(x, 1)), 1e-12, 1e-12);
  EXPECT_EQ(log_softmax(x.to(kCuda), 1).to_vector<double>()[5], -inf);
  EXPECT_CLOSE(softmax(x.to(kCuda), 0), softmax(x, 0), 1e-12, 1e-12);
}

Tensor targets(const std::vector<int64_t>& t, const Shape& shape) {
  return Tensor::from_vector(t, shape);
}

void compare_ce(const Tensor& logits, const Tensor& target, int64_t ignore, double ls,
                const char* reduction, double tol, const std::string& what) {
  Tensor xc = logits.detach().set_requires_grad(true);
  Tensor xg = logits.to(kCuda).detach().set_requires_grad(true);
  Tensor lc = cross_entropy(xc, target, ignore, ls, reduction);
  Tensor lg = cross_entropy(xg, target.to(kCuda), ignore, ls, reduction);
  EXPECT_CLOSE(lg, lc, tol, tol) << "cross_entropy " << reduction << " ls " << ls << " " << what;
  const Tensor dy = randn_seeded(lc.shape(), 31, logits.dtype());
  lc.backward(dy);
  lg.backward(dy.to(kCuda));
  EXPECT_CLOSE(xg.grad(), xc.grad(), tol, tol)
      << "cross_entropy backward " << reduction << " ls " << ls << " " << what;
}

TEST(BackendCrossEntropy, RowsSpatialSmoothingIgnoreReductions) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 2e-6;
    // [N, C]: a warp per sample, one ignored
    const Tensor x2 = randn_seeded({7, 11}, 1, dt) * 2.0;
    const Tensor t2 = targets({3, 0, 10, -100, 5, 5, 1}, {7});
    // [N, C, d1, d2]: the column kernel (S = 12), two ignored positions
    const Tensor x4 = randn_seeded({3, 5, 4, 3}, 2, dt);
    std::vector<int64_t> tv(3 * 12);
    for (size_t i = 0; i < tv.size(); ++i) tv[i] = static_cast<int64_t>((i * 7) % 5);
    tv[4] = 2, tv[13] = 2;
    const Tensor t4 = targets(tv, {3, 4, 3});
    // many classes: a block per sample
    const Tensor xl = randn_seeded({3, 1300}, 3, dt);
    const Tensor tl = targets({1299, 0, 640}, {3});
    for (const char* red : {"mean", "sum", "none"})
      for (double ls : {0.0, 0.1}) {
        compare_ce(x2, t2, -100, ls, red, tol, dtype_name(dt));
        compare_ce(x4, t4, 2, ls, red, tol, "spatial");
        compare_ce(xl, tl, -100, ls, red, tol, "many classes");
      }
    // a single sample [C] with a 0-dim target
    compare_ce(randn_seeded({9}, 4, dt), targets({4}, {}), -100, 0.2, "mean", tol, "[C]");
  }
}

TEST(BackendCrossEntropy, BadTargetNamesTheIndex) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({4, 6}, 5, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(cross_entropy(x, targets({1, 2, 6, 0}, {4}).to(kCuda)),
                    "target 6 is out of bounds for 6 classes (sample 2)");
  EXPECT_IRIS_ERROR(cross_entropy(x, targets({1, -3, 0, 0}, {4}).to(kCuda)),
                    "target -3 is out of bounds for 6 classes (sample 1)");
  const Tensor xs = randn_seeded({2, 3, 5}, 6, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(cross_entropy(xs, targets({0, 1, 2, 0, 1, 0, 0, 0, 9, 0}, {2, 5}).to(kCuda)),
                    "target 9 is out of bounds for 3 classes (sample 1, position 3)");
}

}  // namespace
}  // namespace iris
