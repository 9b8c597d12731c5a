// max_pool2d, avg_pool2d and adaptive_avg_pool2d against naive loops in double (PyTorch's
// window rules spelled out tap by tap), forward and backward, in fp32 and fp64; gradchecks
// in fp64; ceil_mode, count_include_pad, divisor_override; the argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "autograd/conv.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using Pair = std::array<int64_t, 2>;

enum class Kind { kMax, kAvg };

struct PoolCase {
  std::string name;
  Kind kind;
  int64_t N, C, H, W;
  Pair kernel, stride, pad = {0, 0}, dil = {1, 1};
  bool ceil_mode = false;
  bool count_include_pad = true;
  int64_t divisor = 0;  // 0: none

  int64_t out_size(int64_t in, int d) const {
    const int64_t span = in + 2 * pad[d] - dil[d] * (kernel[d] - 1) - 1;
    int64_t o = (span + (ceil_mode ? stride[d] - 1 : 0)) / stride[d] + 1;
    if (ceil_mode && (o - 1) * stride[d] >= in + pad[d]) --o;
    return o;
  }
  Shape x_shape() const { return {N, C, H, W}; }
  Shape out_shape() const { return {N, C, out_size(H, 0), out_size(W, 1)}; }
};

void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }

struct RefPool {
  std::vector<double> out;
  std::vector<int64_t> indices;  // max only
  std::vector<double> dx;        // given dout
};

// Each output element visits its window's taps k = 0..kernel-1 per axis in the padded
// frame; taps in the padding are skipped (max) or counted as zeros (avg).
RefPool ref_pool(const PoolCase& c, const std::vector<double>& x, const std::vector<double>& dout) {
  const Shape os = c.out_shape();
  const int64_t OH = os[2], OW = os[3];
  RefPool r{std::vector<double>(numel_of(os)), std::vector<int64_t>(numel_of(os), -1),
            std::vector<double>(x.size(), 0.0)};
  for (int64_t nc = 0; nc < c.N * c.C; ++nc) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t o = (nc * OH + oh) * OW + ow;
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t best_i = -1, inside = 0, padded = 0;
        std::vector<int64_t> taps;
        for (int64_t kh = 0; kh < c.kernel[0]; ++kh) {
          for (int64_t kw = 0; kw < c.kernel[1]; ++kw) {
            const int64_t ih = oh * c.stride[0] - c.pad[0] + kh * c.dil[0];
            const int64_t iw = ow * c.stride[1] - c.pad[1] + kw * c.dil[1];
            // avg: the window is cut at the far edge of the padding.
            if (ih < c.H + c.pad[0] && iw < c.W + c.pad[1]) ++padded;
            if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
            const int64_t i = ih * c.W + iw;
            const double v = x[nc * c.H * c.W + i];
            if (v > best || (std::isnan(v) && !std::isnan(best))) best = v, best_i = i;
            sum += v;
            ++inside;
            taps.push_back(i);
          }
        }
        if (c.kind == Kind::kMax) {
          r.out[o] = best;
          r.indices[o] = best_i;
          r.dx[nc * c.H * c.W + best_i] += dout[o];
        } else {
          const int64_t div = c.divisor ? c.divisor : (c.count_include_pad ? padded : inside);
          r.out[o] = inside ? sum / double(div) : 0.0;
          for (int64_t i : taps) r.dx[nc * c.H * c.W + i] += dout[o] / double(div);
        }
      }
    }
  }
  return r;
}

Tensor run_pool(const PoolCase& c, const Tensor& x, Tensor* indices = nullptr) {
  if (c.kind == Kind::kMax) {
    auto [out, idx] = max_pool2d_with_indices(x, c.kernel, c.stride, c.pad, c.dil, c.ceil_mode);
    if (indices) *indices = idx;
    return out;
  }
  return avg_pool2d(x, c.kernel, c.stride, c.pad, c.ceil_mode, c.count_include_pad,
                    c.divisor ? std::optional<int64_t>(c.divisor) : std::nullopt);
}

Tensor as_tensor(const std::vector<double>& v, const Shape& s) {
  return Tensor::from_vector<double>(v, s);
}

template <class T>
void check_case(const PoolCase& c, uint64_t seed) {
  const DType dt = dtype_v<T>;
  const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  Tensor x = testing::randn_seeded(c.x_shape(), seed, dt).set_requires_grad(true);
  Tensor indices;
  const Tensor out = run_pool(c, x, &indices);
  ASSERT_EQ(out.shape(), c.out_shape());
  const Tensor dout = testing::randn_seeded(c.out_shape(), seed + 1, dt);
  const RefPool r = ref_pool(c, x.to_vector<double>(), dout.to_vector<double>());
  EXPECT_CLOSE(out, as_tensor(r.out, c.out_shape()), rtol, rtol);
  if (c.kind == Kind::kMax) {
    ASSERT_EQ(indices.dtype(), DType::i64);
    EXPECT_EQ(indices.to_vector<int64_t>(), r.indices);
  }
  out.backward(dout);
  EXPECT_CLOSE(x.grad(), as_tensor(r.dx, c.x_shape()), rtol, rtol);
}

std::vector<PoolCase> all_cases() {
  return {
      {"max_k2_default_stride", Kind::kMax, 2, 3, 8, 6, {2, 2}, {2, 2}},
      {"max_k3_s2_p1", Kind::kMax, 3, 2, 7, 9, {3, 3}, {2, 2}, {1, 1}},
      {"max_k3_s1_dil2", Kind::kMax, 2, 2, 7, 9, {3, 3}, {1, 1}, {1, 1}, {2, 2}},
      {"max_nonsquare", Kind::kMax, 2, 3, 7, 9, {2, 3}, {1, 2}, {1, 0}, {2, 1}},
      {"max_ceil_mode", Kind::kMax, 2, 2, 7, 9, {3, 2}, {2, 2}, {0, 1}, {1, 1}, true},
      {"max_ceil_mode_drops_last", Kind::kMax, 1, 2, 5, 5, {2, 2}, {3, 3}, {1, 1}, {1, 1}, true},
      {"max_overlapping", Kind::kMax, 2, 2, 6, 5, {3, 3}, {1, 1}},
      {"avg_k2", Kind::kAvg, 2, 3, 8, 6, {2, 2}, {2, 2}},
      {"avg_k3_s2_p1", Kind::kAvg, 3, 2, 7, 9, {3, 3}, {2, 2}, {1, 1}},
      {"avg_exclude_pad", Kind::kAvg, 3, 2, 7, 9, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false},
      {"avg_ceil_mode", Kind::kAvg, 2, 2, 7, 9, {3, 2}, {2, 2}, {1, 1}, {1, 1}, true},
      {"avg_ceil_exclude_pad", Kind::kAvg, 2, 2, 7, 9, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, false},
      {"avg_nonsquare_overlap", Kind::kAvg, 2, 2, 7, 9, {2, 3}, {1, 2}, {1, 1}},
      {"avg_divisor_override",
       Kind::kAvg,
       2,
       2,
       7,
       9,
       {3, 3},
       {2, 2},
       {1, 1},
       {1, 1},
       true,
       true,
       4},
  };
}

class PoolCaseTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolCaseTest, FloatMatchesReference) { check_case<float>(GetParam(), 11); }
TEST_P(PoolCaseTest, DoubleMatchesReference) { check_case<double>(GetParam(), 21); }
TEST_P(PoolCaseTest, Gradcheck) {
  const PoolCase c = GetParam();
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{run_pool(c, in[0])}; },
      {testing::param({1, 2, c.H, c.W}, 31)});
}

INSTANTIATE_TEST_SUITE_P(Pool2d, PoolCaseTest, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Pool2d, NonContiguousAndUnbatchedInputs) {
  const PoolCase c{"strided", Kind::kMax, 2, 3, 7, 9, {3, 2}, {2, 1}, {1, 1}};
  // Stored [N, C, W, H] and transposed.
  Tensor base = testing::randn_seeded({2, 3, 9, 7}, 3).set_requires_grad(true);
  for (Kind kind : {Kind::kMax, Kind::kAvg}) {
    PoolCase k = c;
    k.kind = kind;
    base.set_grad(Tensor());
    const Tensor x = base.transpose(2, 3);
    const Tensor out = run_pool(k, x);
    const Tensor dout = testing::randn_seeded(k.out_shape(), 4);
    const RefPool r = ref_pool(k, x.to_vector<double>(), dout.to_vector<double>());
    EXPECT_CLOSE(out, as_tensor(r.out, k.out_shape()), 1e-12, 1e-12);
    out.backward(dout);
    EXPECT_CLOSE(base.grad(), as_tensor(r.dx, k.x_shape()).transpose(2, 3), 1e-12, 1e-12);
    // Unbatched [C, H, W] gives the batched result without the batch dim.
    const Tensor one = x.select(0, 1);
    EXPECT_CLOSE(run_pool(k, one), run_pool(k, one.unsqueeze(0)).squeeze(0), 0, 0);
  }
  auto [out3, idx3] = max_pool2d_with_indices(base.detach().select(0, 0), {2, 2});
  EXPECT_EQ(out3.dim(), 3);
  EXPECT_EQ(idx3.shape(), out3.shape());
}

TEST(Pool2d, MaxTiesGoToTheFirstMaximum) {
  // All-equal input: every window's maximum is its first in-image tap.
  Tensor x = ones({1, 1, 3, 4}, DType::f64).set_requires_grad(true);
  auto [out, idx] = max_pool2d_with_indices(x, {2, 2}, Pair{1, 1});
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 4, 5, 6}));
  sum(out).backward();
  EXPECT_EQ(x.grad().to_vector<double>(),
            (std::vector<double>{1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0}));
}

TEST(Pool2d, MaxPropagatesNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = Tensor::from_vector<double>({1, nan, 3, 4}, {1, 1, 2, 2});
  auto [out, idx] = max_pool2d_with_indices(x, {2, 2});
  EXPECT_TRUE(std::isnan(out.item()));
  EXPECT_EQ(idx.item(), 1);
}

// ---- adaptive average pooling ----

std::vector<double> ref_adaptive(const std::vector<double>& x, int64_t NC, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
  std::vector<double> out(NC * OH * OW);
  for (int64_t nc = 0; nc < NC; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = int64_t(std::floor(double(oh * H) / double(OH)));
        const int64_t h1 = int64_t(std::ceil(double((oh + 1) * H) / double(OH)));
        const int64_t w0 = int64_t(std::floor(double(ow * W) / double(OW)));
        const int64_t w1 = int64_t(std::ceil(double((ow + 1) * W) / double(OW)));
        double s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x[(nc * H + ih) * W + iw];
        out[(nc * OH + oh) * OW + ow] = s / double((h1 - h0) * (w1 - w0));
      }
  return out;
}

TEST(AdaptiveAvgPool2d, MatchesReferenceAndGradchecks) {
  struct Case {
    int64_t N, C, H, W, OH, OW;
  };
  for (const Case& c : {Case{2, 3, 7, 9, 3, 4}, Case{2, 2, 5, 5, 5, 5}, Case{1, 2, 4, 3, 6, 5},
                        Case{3, 2, 8, 8, 1, 1}, Case{2, 1, 9, 7, 2, 3}}) {
    SCOPED_TRACE(::testing::Message() << c.H << "x" << c.W << " -> " << c.OH << "x" << c.OW);
    for (DType dt : {DType::f32, DType::f64}) {
      const Tensor x = testing::randn_seeded({c.N, c.C, c.H, c.W}, 7, dt);
      const Tensor out = adaptive_avg_pool2d(x, {c.OH, c.OW});
      const double tol = dt == DType::f32 ? 1e-6 : 1e-12;
      EXPECT_CLOSE(out,
                   as_tensor(ref_adaptive(x.to_vector<double>(), c.N * c.C, c.H, c.W, c.OH, c.OW),
                             {c.N, c.C, c.OH, c.OW}),
                   tol, tol);
    }
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{adaptive_avg_pool2d(in[0], {c.OH, c.OW})};
        },
        {testing::param({1, c.C, c.H, c.W}, 8)});
  }
  // Transposed and unbatched inputs.
  const Tensor xt = testing::randn_seeded({2, 3, 9, 7}, 9).transpose(2, 3);
  EXPECT_CLOSE(adaptive_avg_pool2d(xt, {3, 4}), adaptive_avg_pool2d(xt.contiguous(), {3, 4}), 0, 0);
  EXPECT_EQ(adaptive_avg_pool2d(xt.select(0, 0), {3, 4}).shape(), (Shape{3, 3, 4}));
  EXPECT_EQ(adaptive_avg_pool2d(xt, {0, 2}).shape(), (Shape{2, 3, 0, 2}));
}

TEST(Pool2d, BadInputsThrowNamingTheOp) {
  const Tensor x = testing::randn_seeded({2, 3, 5, 5}, 1);
  EXPECT_IRIS_ERROR(max_pool2d(x.select(0, 0).select(0, 0), {2, 2}), "max_pool2d: expected a 3-D");
  EXPECT_IRIS_ERROR(max_pool2d(x, {3, 3}, Pair{1, 1}, {2, 1}), "max_pool2d: padding must be");
  EXPECT_IRIS_ERROR(max_pool2d(x, {0, 3}), "max_pool2d: kernel size must be positive");
  EXPECT_IRIS_ERROR(max_pool2d(x, {2, 2}, Pair{0, 1}), "max_pool2d: stride must be positive");
  EXPECT_IRIS_ERROR(max_pool2d(x, {2, 2}, Pair{1, 1}, {0, 0}, {0, 1}), "max_pool2d: dilation");
  EXPECT_IRIS_ERROR(max_pool2d(x, {6, 2}), "max_pool2d: output size 0x2 is too small");
  EXPECT_IRIS_ERROR(max_pool2d(x, {3, 3}, Pair{1, 1}, {0, 0}, {3, 1}), "max_pool2d: output size");
  EXPECT_IRIS_ERROR(max_pool2d(x.to(DType::i64), {2, 2}), "max_pool2d: expected a floating");
  EXPECT_IRIS_ERROR(max_pool2d(zeros({2, 0, 5, 5}), {2, 2}), "max_pool2d: expected non-empty");
  EXPECT_IRIS_ERROR(avg_pool2d(x, {2, 2}, Pair{1, 1}, {2, 0}), "avg_pool2d: padding must be");
  EXPECT_IRIS_ERROR(avg_pool2d(x, {6, 6}), "avg_pool2d: output size");
  EXPECT_IRIS_ERROR(avg_pool2d(x, {2, 2}, std::nullopt, {0, 0}, false, true, 0),
                    "avg_pool2d: divisor must not be zero");
  EXPECT_IRIS_ERROR(avg_pool2d(x.view({30, 5}), {2, 2}), "avg_pool2d: expected a 3-D");
  EXPECT_IRIS_ERROR(adaptive_avg_pool2d(x, {-1, 2}), "adaptive_avg_pool2d: output size must be");
  EXPECT_IRIS_ERROR(adaptive_avg_pool2d(zeros({2, 3, 0, 5}), {2, 2}),
                    "adaptive_avg_pool2d: expected non-empty");
  EXPECT_IRIS_ERROR(adaptive_avg_pool2d(x.select(0, 0).select(0, 0), {2, 2}),
                    "adaptive_avg_pool2d: expected a 3-D");
}

}  // namespace
}  // namespace iris
