// add_layer_norm (s = x + residual, y = layer_norm(s), fused) against the unfused
// composition add then layer_norm on the CPU: forward and backward, with and without the
// affine parameters, with either upstream gradient absent; float64 gradchecks; bf16/f16 by
// the house rule; argument errors.
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "autograd/node.h"
#include "kernels/norm.h"
#include "tests/support/half_rule.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;
using testing::same_bits;

Tensor leaf(const Tensor& t) { return t.defined() ? t.detach().set_requires_grad(true) : t; }

struct Grads {
  Tensor s, y, dx, dr, dw, db;
};

// Forward and backward of the fused op (or of add then layer_norm) over the last dim of
// x [M, N]: ds / dy undefined leaves that output out of the loss.
Grads run(bool fused, const Tensor& x0, const Tensor& r0, const Tensor& w0, const Tensor& b0,
          const Tensor& ds, const Tensor& dy) {
  const int64_t N = x0.size(-1);
  Tensor x = leaf(x0), r = leaf(r0), w = leaf(w0), b = leaf(b0);
  Tensor s, y;
  if (fused) {
    const AddLayerNormResult o = add_layer_norm(x, r, {N}, w, b);
    s = o.sum;
    y = o.out;
  } else {
    s = x + r;
    y = layer_norm(s, {N}, w, b);
  }
  std::vector<Tensor> roots, grads;
  if (ds.defined()) roots.push_back(s), grads.push_back(ds);
  if (dy.defined()) roots.push_back(y), grads.push_back(dy);
  autograd::backward(roots, grads, false);
  return {s.detach(),
          y.detach(),
          x.grad(),
          r.grad(),
          w.defined() ? w.grad() : Tensor(),
          b.defined() ? b.grad() : Tensor()};
}

// The fused op runs the layer norm's own rows on the same s: on the CPU its results are
// the composition's bit for bit (the one difference, ds added in the same rounding step,
// is the same single addition the engine does).
void expect_same_as_unfused(int64_t M, int64_t N, DType dt, bool affine, bool with_ds, bool with_dy,
                            uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "M " << M << " N " << N << " " << dtype_name(dt) << (affine ? " affine" : "")
               << (with_ds ? " ds" : "") << (with_dy ? " dy" : ""));
  const Tensor x = randn_seeded({M, N}, seed, dt) + 2.0;
  const Tensor r = randn_seeded({M, N}, seed + 1, dt);
  const Tensor w = affine ? randn_seeded({N}, seed + 2, dt) : Tensor();
  const Tensor b = affine ? randn_seeded({N}, seed + 3, dt) : Tensor();
  const Tensor ds = with_ds ? randn_seeded({M, N}, seed + 4, dt) : Tensor();
  const Tensor dy = with_dy ? randn_seeded({M, N}, seed + 5, dt) : Tensor();
  const Grads f = run(true, x, r, w, b, ds, dy), u = run(false, x, r, w, b, ds, dy);
  EXPECT_CLOSE(f.s, u.s, 0, 0) << "sum";
  EXPECT_CLOSE(f.y, u.y, 0, 0) << "out";
  EXPECT_CLOSE(f.dx, u.dx, 0, 0) << "dx";
  EXPECT_CLOSE(f.dr, u.dr, 0, 0) << "dresidual";
  if (affine && with_dy) {
    EXPECT_CLOSE(f.dw, u.dw, 0, 0) << "dweight";
    EXPECT_CLOSE(f.db, u.db, 0, 0) << "dbias";
  } else if (affine) {  // y unused: the composition never reaches layer_norm, the fused op gives 0
    EXPECT_FALSE(u.dw.defined());
    EXPECT_CLOSE(f.dw, zeros({N}, dt), 0, 0) << "dweight";
    EXPECT_CLOSE(f.db, zeros({N}, dt), 0, 0) << "dbias";
  }
}

class AddLayerNormWidth : public ::testing::TestWithParam<int64_t> {};

TEST_P(AddLayerNormWidth, MatchesAddThenLayerNorm) {
  const int64_t N = GetParam();
  uint64_t seed = 100 + N;
  for (DType dt : {DType::f32, DType::f64})
    for (bool affine : {false, true})
      expect_same_as_unfused(37, N, dt, affine, true, true, seed += 6);
}

TEST_P(AddLayerNormWidth, EitherGradientMayBeAbsent) {
  const int64_t N = GetParam();
  expect_same_as_unfused(13, N, DType::f32, true, false, true, 200 + N);  // only y is used
  expect_same_as_unfused(13, N, DType::f32, true, true, false, 300 + N);  // only s is used
}

INSTANTIATE_TEST_SUITE_P(Widths, AddLayerNormWidth, ::testing::Values(1, 7, 192, 1000, 1500),
                         [](const auto& info) { return "N" + std::to_string(info.param); });

TEST(AddLayerNorm, MultiDimNonContiguousInputs) {
  // x a transposed view [4, 6, 5], residual an expanded row; normalise over [6, 5].
  const Tensor x = randn_seeded({5, 6, 4}, 1, DType::f64).permute({2, 1, 0});
  const Tensor r = randn_seeded({1, 6, 5}, 2, DType::f64).expand({4, 6, 5});
  const Tensor w = randn_seeded({6, 5}, 3, DType::f64), b = randn_seeded({6, 5}, 4, DType::f64);
  ASSERT_FALSE(x.is_contiguous());
  const AddLayerNormResult o = add_layer_norm(x, r, {6, 5}, w, b);
  EXPECT_EQ(o.sum.shape(), (Shape{4, 6, 5}));
  EXPECT_CLOSE(o.sum, x + r, 0, 0);
  EXPECT_CLOSE(o.out, layer_norm(x + r, {6, 5}, w, b), 0, 0);
}

TEST(AddLayerNorm, GradcheckBothOutputsEveryInput) {
  for (bool weight : {false, true})
    for (bool bias : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "weight " << weight << " bias " << bias);
      EXPECT_GRADCHECK(
          [](const std::vector<Tensor>& in) {
            const AddLayerNormResult o = add_layer_norm(in[0], in[1], {2, 5}, in[2], in[3], 1e-3);
            return std::vector<Tensor>{o.sum, o.out};
          },
          {param({3, 2, 5}, 1), param({3, 2, 5}, 2), weight ? param({2, 5}, 3) : Tensor(),
           bias ? param({2, 5}, 4) : Tensor()});
    }
  // Only the normalised output, and only the sum, as the loss.
  for (int k = 0; k < 2; ++k)
    EXPECT_GRADCHECK(
        [k](const std::vector<Tensor>& in) {
          const AddLayerNormResult o = add_layer_norm(in[0], in[1], {6}, in[2], in[3]);
          return std::vector<Tensor>{k == 0 ? o.out : o.sum};
        },
        {param({4, 6}, 5), param({4, 6}, 6), param({6}, 7), param({6}, 8)});
}

TEST(AddLayerNorm, KernelWithoutDyOrDs) {
  const int64_t M = 9, N = 33;
  const Tensor x = randn_seeded({M, N}, 10), r = randn_seeded({M, N}, 11);
  const Tensor w = randn_seeded({N}, 12), b = randn_seeded({N}, 13);
  const Tensor dy = randn_seeded({M, N}, 14), ds = randn_seeded({M, N}, 15);
  Tensor s = Tensor::empty({M, N}, DType::f64), y = Tensor::empty({M, N}, DType::f64);
  Tensor mean = Tensor::empty({M}, DType::f64), rstd = Tensor::empty({M}, DType::f64);
  const Device cpu = Device::cpu();
  kernels::add_layer_norm_forward_table().get(cpu)(x, r, w, b, 1e-5, s, y, mean, rstd);
  auto bwd = [&](const Tensor& g_y, const Tensor& g_s) {
    std::vector<Tensor> out{Tensor::empty({M, N}, DType::f64), Tensor::empty({N}, DType::f64),
                            Tensor::empty({N}, DType::f64)};
    kernels::add_layer_norm_backward_table().get(cpu)(g_y, g_s, s, mean, rstd, w, out[0], out[1],
                                                      out[2]);
    return out;
  };
  const std::vector<Tensor> full = bwd(dy, ds), no_ds = bwd(dy, Tensor()),
                            no_dy = bwd(Tensor(), ds), none = bwd(Tensor(), Tensor());
  // Without ds: the layer norm's backward; without dy: dx = ds and no parameter gradients.
  Tensor dx_ln = Tensor::empty({M, N}, DType::f64);
  kernels::layer_norm_backward_table().get(cpu)(dy, s, mean, rstd, w, dx_ln, Tensor(), Tensor());
  EXPECT_CLOSE(no_ds[0], dx_ln, 0, 0);
  EXPECT_CLOSE(full[0], dx_ln + ds, 0, 0);
  EXPECT_CLOSE(no_ds[1], full[1], 0, 0);
  EXPECT_CLOSE(no_ds[2], full[2], 0, 0);
  EXPECT_CLOSE(no_dy[0], ds, 0, 0);
  EXPECT_CLOSE(no_dy[1], zeros({N}, DType::f64), 0, 0);
  EXPECT_CLOSE(no_dy[2], zeros({N}, DType::f64), 0, 0);
  EXPECT_CLOSE(none[0], zeros({M, N}, DType::f64), 0, 0);
}

// bf16/f16: the sum is the 16-bit add's; y, dx, dweight, dbias within the house rule of the
// naive 16-bit computation (tests/support/half_rule.h) against float64.
void check_half(DType dt, int64_t M, int64_t N) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " M " << M << " N " << N);
  const Tensor x = (randn_seeded({M, N}, 71, DType::f32) + 2.0).to(dt);
  const Tensor r = randn_seeded({M, N}, 72, DType::f32).to(dt);
  const Tensor w = (randn_seeded({N}, 73, DType::f32) + 1.0).to(dt);
  const Tensor b = randn_seeded({N}, 74, DType::f32).to(dt);
  const Tensor dy = randn_seeded({M, N}, 75, DType::f32).to(dt);
  const Tensor ds = randn_seeded({M, N}, 76, DType::f32).to(dt);
  Tensor x16 = leaf(x), res16 = leaf(r), w16 = leaf(w), b16 = leaf(b);
  const AddLayerNormResult o = add_layer_norm(x16, res16, {N}, w16, b16);
  ASSERT_EQ(o.out.dtype(), dt);
  EXPECT_TRUE(same_bits(o.sum, x + r)) << "the sum is the 16-bit add's";
  Tensor x64 = leaf(x.to(DType::f64)), r64 = leaf(r.to(DType::f64));
  Tensor w64 = leaf(w.to(DType::f64)), b64 = leaf(b.to(DType::f64));
  const Tensor s64 = x64 + r64;
  const Tensor y64 = layer_norm(s64, {N}, w64, b64);
  // The naive computation normalises the 16-bit sum.
  const Tensor s = o.sum.detach();
  EXPECT_TRUE(testing::within_rule(o.out, testing::naive_layer_norm(s, w, b, 1e-5, dt), y64));
  autograd::backward({o.sum, o.out}, {ds, dy}, false);
  autograd::backward({s64, y64}, {ds.to(DType::f64), dy.to(DType::f64)}, false);
  const testing::NaiveLayerNormGrads naive = testing::naive_layer_norm_backward(dy, s, w, 1e-5, dt);
  std::vector<double> dxv = naive.dx.to_vector<double>();
  const std::vector<double> dsv = ds.to_vector<double>();
  for (size_t i = 0; i < dxv.size(); ++i) dxv[i] = testing::r16(dxv[i] + dsv[i], dt);
  const Tensor naive_dx = testing::from_doubles(dxv, {M, N});
  ASSERT_EQ(x16.grad().dtype(), dt);
  EXPECT_TRUE(testing::within_rule(x16.grad(), naive_dx, x64.grad())) << "dx";
  EXPECT_TRUE(same_bits(res16.grad(), x16.grad())) << "dresidual";
  EXPECT_TRUE(testing::within_rule(w16.grad(), naive.dw, w64.grad())) << "dweight";
  EXPECT_TRUE(testing::within_rule(b16.grad(), naive.db, b64.grad())) << "dbias";
}

TEST(AddLayerNorm, HalfTypesFollowTheHouseRule) {
  for (DType dt : {DType::bf16, DType::f16})
    for (int64_t N : {7, 192, 1500}) check_half(dt, 19, N);
}

TEST(AddLayerNorm, HalfForwardMatchesAddThenLayerNorm) {
  // The fused op normalises the rounded 16-bit sum, exactly what add then layer_norm sees.
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor x = (randn_seeded({11, 300}, 81, DType::f32) + 2.0).to(dt);
    const Tensor r = randn_seeded({11, 300}, 82, DType::f32).to(dt);
    const Tensor w = randn_seeded({300}, 83, DType::f32).to(dt);
    const AddLayerNormResult o = add_layer_norm(x, r, {300}, w);
    EXPECT_TRUE(same_bits(o.out, layer_norm(x + r, {300}, w))) << dtype_name(dt);
  }
}

TEST(AddLayerNorm, BadArgumentsNameTheOp) {
  const Tensor x = randn_seeded({2, 3, 4}, 1, DType::f32);
  EXPECT_IRIS_ERROR(add_layer_norm(x, randn_seeded({2, 4, 3}, 2, DType::f32), {4}),
                    "add_layer_norm: residual float32[2, 4, 3]");
  EXPECT_IRIS_ERROR(add_layer_norm(x, randn_seeded({3, 4}, 2, DType::f32), {4}),
                    "does not match the input float32[2, 3, 4]");
  EXPECT_IRIS_ERROR(add_layer_norm(x, x.to(DType::f64), {4}), "add_layer_norm: residual float64");
  EXPECT_IRIS_ERROR(add_layer_norm(x, Tensor(), {4}), "add_layer_norm: undefined residual");
  EXPECT_IRIS_ERROR(add_layer_norm(x, x, {3}), "add_layer_norm: normalized_shape [3]");
  EXPECT_IRIS_ERROR(add_layer_norm(x, x, {4}, ones({3})), "add_layer_norm: weight float32[3]");
  EXPECT_IRIS_ERROR(add_layer_norm(arange(4).view({1, 4}), arange(4).view({1, 4}), {4}),
                    "add_layer_norm");
}

}  // namespace
}  // namespace iris
