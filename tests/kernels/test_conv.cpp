// conv2d against a direct seven-loop convolution in double, forward and analytic backward
// (dinp, dweight, dbias), in fp32 and fp64, on odd shapes, strided / broadcast operands and
// several thread counts; finite-difference gradchecks in fp64; the argument checks.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "autograd/conv.h"
#include "core/parallel.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using Pair = std::array<int64_t, 2>;

struct ConvCase {
  std::string name;
  int64_t N, Cin, H, W, Cout, kH, kW;
  Pair stride = {1, 1}, pad = {0, 0}, dil = {1, 1};
  int64_t groups = 1;
  bool bias = true;

  int64_t OH() const { return (H + 2 * pad[0] - dil[0] * (kH - 1) - 1) / stride[0] + 1; }
  int64_t OW() const { return (W + 2 * pad[1] - dil[1] * (kW - 1) - 1) / stride[1] + 1; }
  Shape x_shape() const { return {N, Cin, H, W}; }
  Shape w_shape() const { return {Cout, Cin / groups, kH, kW}; }
  Shape out_shape() const { return {N, Cout, OH(), OW()}; }
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

// The reference loops, written once: visit(n, co, oh, ow, x index, w index) for every tap
// that lands inside the input.
template <class Visit>
void for_each_tap(const ConvCase& c, Visit&& visit) {
  const int64_t Cin_g = c.Cin / c.groups, Cout_g = c.Cout / c.groups;
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.Cout; ++co)
      for (int64_t oh = 0; oh < c.OH(); ++oh)
        for (int64_t ow = 0; ow < c.OW(); ++ow)
          for (int64_t cg = 0; cg < Cin_g; ++cg)
            for (int64_t kh = 0; kh < c.kH; ++kh)
              for (int64_t kw = 0; kw < c.kW; ++kw) {
                const int64_t ih = oh * c.stride[0] - c.pad[0] + kh * c.dil[0];
                const int64_t iw = ow * c.stride[1] - c.pad[1] + kw * c.dil[1];
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const int64_t ci = co / Cout_g * Cin_g + cg;
                const int64_t xi = ((n * c.Cin + ci) * c.H + ih) * c.W + iw;
                const int64_t wi = ((co * Cin_g + cg) * c.kH + kh) * c.kW + kw;
                const int64_t oi = ((n * c.Cout + co) * c.OH() + oh) * c.OW() + ow;
                visit(oi, xi, wi, co);
              }
}

std::vector<double> ref_forward(const ConvCase& c, const std::vector<double>& x,
                                const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> out(numel_of(c.out_shape()), 0.0);
  for_each_tap(c, [&](int64_t oi, int64_t xi, int64_t wi, int64_t) { out[oi] += x[xi] * w[wi]; });
  if (!b.empty()) {
    const int64_t P = c.OH() * c.OW();
    for (size_t i = 0; i < out.size(); ++i) out[i] += b[(int64_t(i) / P) % c.Cout];
  }
  return out;
}

struct RefGrads {
  std::vector<double> dx, dw, db;
};

RefGrads ref_backward(const ConvCase& c, const std::vector<double>& x, const std::vector<double>& w,
                      const std::vector<double>& dout) {
  RefGrads g{std::vector<double>(x.size(), 0.0), std::vector<double>(w.size(), 0.0),
             std::vector<double>(c.Cout, 0.0)};
  for_each_tap(c, [&](int64_t oi, int64_t xi, int64_t wi, int64_t) {
    g.dx[xi] += w[wi] * dout[oi];
    g.dw[wi] += x[xi] * dout[oi];
  });
  const int64_t P = c.OH() * c.OW();
  for (size_t i = 0; i < dout.size(); ++i) g.db[(int64_t(i) / P) % c.Cout] += dout[i];
  return g;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& s) {
  return Tensor::from_vector<double>(v, s);
}

// fp32 is compared at 1e-5 of the typical magnitude of a sum of `terms` unit products.
struct Tolerance {
  double rtol, unit;
  double atol(int64_t terms) const { return unit * std::sqrt(double(std::max<int64_t>(1, terms))); }
};
template <class T>
Tolerance tolerance() {
  return std::is_same_v<T, float> ? Tolerance{1e-5, 1e-5} : Tolerance{1e-10, 1e-10};
}

// Forward and backward of one case with operands made by `make_x` / `make_w` (which may
// return strided or broadcast views of leaf tensors), against the reference.
template <class T>
void check_case(const ConvCase& c, uint64_t seed) {
  const DType dt = dtype_v<T>;
  Tensor x = testing::randn_seeded(c.x_shape(), seed, dt).set_requires_grad(true);
  Tensor w = testing::randn_seeded(c.w_shape(), seed + 1, dt).set_requires_grad(true);
  Tensor b;
  if (c.bias) b = testing::randn_seeded({c.Cout}, seed + 2, dt).set_requires_grad(true);
  const Tensor out = conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  ASSERT_EQ(out.shape(), c.out_shape());

  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = c.bias ? b.to_vector<double>() : std::vector<double>();
  const Tolerance tol = tolerance<T>();
  const int64_t kk = c.kH * c.kW;
  EXPECT_CLOSE(out, as_tensor(ref_forward(c, xv, wv, bv), c.out_shape()), tol.rtol,
               tol.atol(c.Cin / c.groups * kk));

  const Tensor dout = testing::randn_seeded(c.out_shape(), seed + 3, dt);
  out.backward(dout);
  const RefGrads g = ref_backward(c, xv, wv, dout.to_vector<double>());
  EXPECT_CLOSE(x.grad(), as_tensor(g.dx, c.x_shape()), tol.rtol, tol.atol(c.Cout / c.groups * kk));
  const int64_t pixels = c.N * c.OH() * c.OW();
  EXPECT_CLOSE(w.grad(), as_tensor(g.dw, c.w_shape()), tol.rtol, tol.atol(pixels));
  if (c.bias) {
    EXPECT_CLOSE(b.grad(), as_tensor(g.db, {c.Cout}), tol.rtol, tol.atol(pixels));
  }
}

std::vector<ConvCase> all_cases() {
  return {
      {"basic3x3", 3, 4, 7, 9, 5, 3, 3, {1, 1}, {1, 1}},
      {"stride2_pad1", 3, 3, 7, 9, 6, 3, 3, {2, 2}, {1, 1}},
      {"dilation2", 3, 4, 7, 9, 5, 3, 3, {1, 1}, {2, 2}, {2, 2}},
      {"groups2", 3, 4, 7, 9, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      {"depthwise", 3, 6, 7, 9, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 6},
      {"depthwise_multiplier2_nobias", 2, 4, 7, 9, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4, false},
      {"nonsquare_kernel", 3, 3, 7, 9, 4, 2, 5, {2, 1}, {1, 2}, {1, 2}},
      {"stride3_pad2_dil2_groups3", 2, 6, 11, 8, 9, 3, 2, {3, 2}, {2, 1}, {2, 3}, 3},
      {"pointwise", 3, 5, 7, 9, 7, 1, 1},
      {"pointwise_stride2", 3, 5, 7, 9, 7, 1, 1, {2, 2}},
      {"pointwise_padded", 2, 3, 5, 6, 4, 1, 1, {1, 1}, {1, 1}},
      {"kernel_covers_input", 2, 3, 5, 5, 4, 5, 5},
      {"patchify_8x8", 2, 3, 24, 16, 5, 8, 8, {8, 8}},
      {"single_image", 1, 3, 9, 7, 4, 3, 3, {1, 1}, {1, 1}},
      // Several images per thread and per tile (threads split the batch).
      {"batch8_image_tiles", 8, 3, 16, 16, 5, 3, 3, {1, 1}, {1, 1}},
      {"batch7_image_tiles_groups", 7, 4, 15, 17, 6, 3, 3, {1, 2}, {1, 1}, {1, 1}, 2},
      // Column matrices too big for one tile: several row tiles per image.
      {"row_tiles", 2, 64, 31, 45, 8, 3, 3, {1, 1}, {1, 1}},
      {"pointwise_row_tiles", 2, 300, 40, 40, 4, 1, 1},
      {"row_tiles_groups2_stride2", 2, 96, 40, 50, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
  };
}

class Conv2dCase : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dCase, FloatMatchesReference) { check_case<float>(GetParam(), 11); }
TEST_P(Conv2dCase, DoubleMatchesReference) { check_case<double>(GetParam(), 21); }

INSTANTIATE_TEST_SUITE_P(Conv2d, Conv2dCase, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

// Restores the pool size when a test that changes it ends.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(Conv2d, SameResultsAtEveryThreadCount) {
  // 1: serial; several threads: over images (big enough batches), over groups (depthwise)
  // or a threaded GEMM.
  std::vector<ConvCase> cases;
  for (const ConvCase& c : all_cases()) {
    if (c.name == "stride2_pad1" || c.name == "depthwise" || c.name == "pointwise" ||
        c.name.find("tiles") != std::string::npos || c.name.find("groups3") != std::string::npos)
      cases.push_back(c);
  }
  ASSERT_EQ(cases.size(), 9u);
  for (int threads : {1, 3, 4}) {
    ThreadCount tc(threads);
    for (const ConvCase& c : cases) {
      SCOPED_TRACE(c.name + " with " + std::to_string(threads) + " threads");
      check_case<float>(c, 31);
      check_case<double>(c, 41);
    }
  }
}

TEST(Conv2d, StridedAndBroadcastOperands) {
  const ConvCase c{"strided", 3, 4, 7, 9, 6, 3, 2, {2, 1}, {1, 1}, {1, 2}, 2};
  // x: one image broadcast over the batch, stored [1, C, W, H] and transposed.
  Tensor x_leaf = testing::randn_seeded({1, c.Cin, c.W, c.H}, 5).set_requires_grad(true);
  const Tensor x = x_leaf.transpose(2, 3).expand(c.x_shape());
  // w: stored [kW, Cout, Cin_g, kH] and permuted; b: every other element of a longer vector.
  Tensor w_leaf =
      testing::randn_seeded({c.kW, c.Cout, c.Cin / c.groups, c.kH}, 6).set_requires_grad(true);
  const Tensor w = w_leaf.permute({1, 2, 3, 0});
  Tensor b_leaf = testing::randn_seeded({2 * c.Cout}, 7).set_requires_grad(true);
  const Tensor b = b_leaf.slice(0, 0, 2 * c.Cout, 2);
  ASSERT_FALSE(x.is_contiguous() || w.is_contiguous() || b.is_contiguous());

  const Tensor out = conv2d(x, w, b, c.stride, c.pad, c.dil, c.groups);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  EXPECT_CLOSE(out, as_tensor(ref_forward(c, xv, wv, b.to_vector<double>()), c.out_shape()), 1e-10,
               1e-10);

  // A non-contiguous incoming gradient too.
  const Tensor dout_t = testing::randn_seeded({c.N, c.Cout, c.OW(), c.OH()}, 8).transpose(2, 3);
  out.backward(dout_t);
  const RefGrads g = ref_backward(c, xv, wv, dout_t.to_vector<double>());
  const Tensor dx = sum(as_tensor(g.dx, c.x_shape()), {0}, true).transpose(2, 3);
  EXPECT_CLOSE(x_leaf.grad(), dx, 1e-10, 1e-10);
  EXPECT_CLOSE(w_leaf.grad(), as_tensor(g.dw, c.w_shape()).permute({3, 0, 1, 2}), 1e-10, 1e-10);
  const Tensor db = as_tensor(g.db, {c.Cout}).unsqueeze(1);
  EXPECT_CLOSE(b_leaf.grad().view({c.Cout, 2}).slice(1, 0, 1), db, 1e-10, 1e-10);
  EXPECT_CLOSE(b_leaf.grad().view({c.Cout, 2}).slice(1, 1, 2), zeros({c.Cout, 1}, DType::f64), 0,
               0);
}

TEST(Conv2d, UnbatchedInput) {
  const Tensor x = testing::randn_seeded({3, 6, 5}, 1);
  const Tensor w = testing::randn_seeded({4, 3, 3, 3}, 2);
  const Tensor b = testing::randn_seeded({4}, 3);
  const Tensor out = conv2d(x, w, b, {1, 2}, {1, 1});
  ASSERT_EQ(out.shape(), (Shape{4, 6, 3}));
  EXPECT_CLOSE(out, conv2d(x.unsqueeze(0), w, b, {1, 2}, {1, 1}).squeeze(0), 0, 0);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{conv2d(in[0], in[1], in[2], {1, 2}, {1, 1})};
      },
      {testing::param({2, 4, 3}, 4), testing::param({3, 2, 2, 2}, 5), testing::param({3}, 6)});
}

TEST(Conv2d, EmptyBatch) {
  Tensor x = zeros({0, 3, 5, 5}, DType::f64).set_requires_grad(true);
  Tensor w = testing::param({4, 3, 3, 3}, 1);
  Tensor b = testing::param({4}, 2);
  const Tensor out = conv2d(x, w, b);
  ASSERT_EQ(out.shape(), (Shape{0, 4, 3, 3}));
  sum(out).backward();
  EXPECT_CLOSE(w.grad(), zeros({4, 3, 3, 3}, DType::f64), 0, 0);
  EXPECT_CLOSE(b.grad(), zeros({4}, DType::f64), 0, 0);
}

struct GradCase {
  ConvCase c;
  bool grad_x, grad_w, grad_b;
};

TEST(Conv2d, Gradcheck) {
  const std::vector<GradCase> cases = {
      {{"stride2_pad1", 2, 2, 5, 4, 3, 3, 3, {2, 2}, {1, 1}}, true, true, true},
      {{"dilation2_groups2", 2, 4, 6, 5, 2, 2, 2, {1, 1}, {1, 2}, {2, 2}, 2}, true, true, true},
      {{"depthwise", 2, 3, 5, 4, 3, 3, 3, {1, 2}, {1, 1}, {1, 1}, 3}, true, true, true},
      {{"nonsquare", 1, 2, 5, 6, 2, 2, 3, {2, 1}, {1, 1}, {1, 2}}, true, true, true},
      {{"pointwise", 3, 3, 3, 2, 2, 1, 1}, true, true, true},
      {{"only_input", 2, 2, 4, 4, 2, 3, 3, {1, 1}, {1, 1}}, true, false, false},
      {{"only_weight_nobias", 2, 2, 4, 4, 2, 3, 3, {2, 1}, {1, 0}, {1, 1}, 1, false},
       false,
       true,
       false},
      {{"only_bias", 2, 2, 4, 4, 2, 3, 3}, false, false, true},
  };
  uint64_t seed = 100;
  for (const GradCase& gc : cases) {
    SCOPED_TRACE(gc.c.name);
    const ConvCase& c = gc.c;
    auto make = [&](const Shape& s, bool grad) {
      return grad ? testing::param(s, ++seed) : testing::randn_seeded(s, ++seed);
    };
    std::vector<Tensor> inputs = {make(c.x_shape(), gc.grad_x), make(c.w_shape(), gc.grad_w)};
    if (c.bias) inputs.push_back(make({c.Cout}, gc.grad_b));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(),
                                            c.stride, c.pad, c.dil, c.groups)};
        },
        inputs);
  }
}

TEST(Conv2d, BadInputsThrowNamingTheOp) {
  const Tensor x = testing::randn_seeded({2, 4, 5, 5}, 1);
  const Tensor w = testing::randn_seeded({6, 4, 3, 3}, 2);
  EXPECT_IRIS_ERROR(conv2d(x.view({8, 5, 5}).select(0, 0), w), "conv2d: expected a 3-D");
  EXPECT_IRIS_ERROR(conv2d(x, w.select(0, 0)), "conv2d: expected a 4-D weight");
  EXPECT_IRIS_ERROR(conv2d(x, testing::randn_seeded({6, 3, 3, 3}, 3)),
                    "expects 3 input channels, but input float64[2, 4, 5, 5] cpu has 4");
  EXPECT_IRIS_ERROR(
      conv2d(x, testing::randn_seeded({6, 1, 3, 3}, 3), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3),
      "conv2d: input channels 4 are not divisible by groups=3");
  EXPECT_IRIS_ERROR(
      conv2d(x, testing::randn_seeded({5, 2, 3, 3}, 3), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
      "conv2d: output channels 5 are not divisible by groups=2");
  EXPECT_IRIS_ERROR(conv2d(x, testing::randn_seeded({6, 4, 6, 3}, 3)), "conv2d: output size 0x3");
  EXPECT_IRIS_ERROR(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {3, 1}), "conv2d: output size");
  EXPECT_IRIS_ERROR(conv2d(x, w.to(DType::f32)), "conv2d: dtype mismatch");
  EXPECT_IRIS_ERROR(conv2d(x, w, testing::randn_seeded({6}, 3, DType::f32)),
                    "conv2d: dtype mismatch");
  EXPECT_IRIS_ERROR(conv2d(x, w, testing::randn_seeded({5}, 3)), "conv2d: expected a bias");
  EXPECT_IRIS_ERROR(conv2d(x, w, Tensor(), {0, 1}), "conv2d: stride must be positive");
  EXPECT_IRIS_ERROR(conv2d(x, w, Tensor(), {1, 1}, {-1, 0}), "conv2d: padding");
  EXPECT_IRIS_ERROR(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 0}), "conv2d: dilation");
  EXPECT_IRIS_ERROR(conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 0), "conv2d: groups");
  EXPECT_IRIS_ERROR(conv2d(x.to(DType::i64), w.to(DType::i64)), "conv2d: expected a floating");
  EXPECT_IRIS_ERROR(conv2d(x.to(DType::bf16), w.to(DType::bf16)), "conv2d: unsupported dtype");
}

}  // namespace
}  // namespace iris
