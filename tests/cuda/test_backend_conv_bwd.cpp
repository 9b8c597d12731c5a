// Backend comparison for the CUDA conv2d backward-data paths: stride phases (strides 2 and 3,
// with dilation, phases with no taps whose dx is zero), the few-rows tile (Cin per group 1..16)
// and the 64-row tile, and the fixed-order split-K for few blocks with a long K. Each case is
// checked against the CPU backend in fp64 on the same inputs, element by element, within the
// bound of a K-term sum: 2 (K + 2) u sum |dy| |w| (u the tested type's unit roundoff; plus one
// output rounding for bf16 / fp16).
#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "kernels/conv.h"
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct BwdCase {
  const char* name;
  int64_t N, Cin, H, W, Cout, kH, kW;
  kernels::Conv2dParams p;  // stride, pad, dilation (h, w), groups
};

// Shapes are not multiples of any tile; the comments say which path each one takes.
const std::vector<BwdCase>& cases() {
  static const std::vector<BwdCase> all = {
      // 16-row tile, 4 phases of up to 4x4 taps, 8 blocks: split-K in 2
      {"rgb 7x7 stride 2 pad 3", 2, 3, 19, 23, 16, 7, 7, {2, 2, 3, 3, 1, 1, 1}},
      // 9 phases of one tap each
      {"Cin 1 stride 3 pad 0", 3, 1, 10, 11, 5, 3, 3, {3, 3, 0, 0, 1, 1, 1}},
      // rows: 3 phases of one tap; columns: gcd(2, 2) = 2, odd (iw + pw) get no tap (dx 0)
      {"Cin 2 stride 3x2 dilation 2", 2, 2, 12, 9, 6, 3, 3, {3, 2, 2, 1, 2, 2, 1}},
      // tap step 2, output step 3 per tap
      {"stride 2 dilation 3 groups 2", 2, 4, 11, 10, 6, 3, 3, {2, 2, 3, 3, 3, 3, 2}},
      // the last input column meets no output
      {"stride 2 kernel 2 pad 0", 2, 3, 8, 9, 4, 2, 2, {2, 2, 0, 0, 1, 1, 1}},
      // three of four phases have no tap
      {"1x1 stride 2", 2, 5, 7, 8, 6, 1, 1, {2, 2, 0, 0, 1, 1, 1}},
      {"pad 3 around a 3x3, stride 1x2", 1, 3, 5, 6, 4, 3, 3, {1, 2, 3, 2, 1, 1, 1}},
      // 16-row tile, 7 column blocks
      {"rgb many pixels stride 1", 2, 3, 21, 20, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      {"Cin 16 fills the 16-row tile", 2, 16, 9, 7, 8, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      // 64-row tile, one block, K = 864: split-K in 6
      {"Cin 20 long K split", 1, 20, 3, 5, 96, 3, 3, {1, 1, 1, 1, 1, 1, 1}},
      // 64-row tile (17 rows per group), stride 2, K up to 320: split-K in 2
      {"Cin 17 per group stride 2 split", 2, 34, 5, 6, 160, 3, 3, {2, 2, 1, 1, 1, 1, 2}},
      {"stride 3 pad 2 dilation 2 depthwise", 2, 3, 13, 11, 3, 3, 3, {3, 3, 2, 2, 2, 2, 3}},
  };
  return all;
}

Shape out_shape(const BwdCase& c) {
  return {c.N, c.Cout,
          kernels::conv_output_size(c.H, c.kH, c.p.stride_h, c.p.pad_h, c.p.dilation_h),
          kernels::conv_output_size(c.W, c.kW, c.p.stride_w, c.p.pad_w, c.p.dilation_w)};
}

// dx on the CPU in fp64 from dy and w (any dtype, converted exactly).
Tensor cpu_dx(const BwdCase& c, const Tensor& dy, const Tensor& w) {
  Tensor dx = Tensor::empty({c.N, c.Cin, c.H, c.W}, DType::f64);
  kernels::conv2d_backward_data_table().get(Device::cpu())(dy.to(DType::f64), w.to(DType::f64), c.p,
                                                           dx);
  return dx;
}

// Checks got (any device and dtype) against the fp64 reference on the same inputs.
void expect_within_bound(const BwdCase& c, const Tensor& got, const Tensor& dy, const Tensor& w,
                         double u, double out_rounding) {
  const std::vector<double> ref = cpu_dx(c, dy, w).to_vector<double>();
  const std::vector<double> mag =
      cpu_dx(c, abs(dy.to(DType::f64)), abs(w.to(DType::f64))).to_vector<double>();
  const std::vector<double> g = got.to(Device::cpu()).to(DType::f64).to_vector<double>();
  ASSERT_EQ(g.size(), ref.size());
  const int64_t K = c.Cout / c.p.groups * c.kH * c.kW;
  int64_t nonzero = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double bound = out_rounding * std::fabs(ref[i]) + 2.0 * (K + 2) * u * mag[i];
    ASSERT_LE(std::fabs(g[i] - ref[i]), bound)
        << "at " << i << ": got " << g[i] << ", want " << ref[i];
    nonzero += ref[i] != 0;
  }
  EXPECT_GT(nonzero, 0);
}

TEST(BackendConvBwd, BackwardDataMatchesCpuFp32Fp64) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    const double u = dt == DType::f64 ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
    for (const BwdCase& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Tensor dy = randn_seeded(out_shape(c), 11, dt);
      const Tensor w = randn_seeded({c.Cout, c.Cin / c.p.groups, c.kH, c.kW}, 12, dt);
      Tensor dx = Tensor::empty({c.N, c.Cin, c.H, c.W}, dt, kCuda);
      kernels::conv2d_backward_data_table().get(kCuda)(dy.to(kCuda), w.to(kCuda), c.p, dx);
      expect_within_bound(c, dx, dy, w, u, 0);
    }
  }
}

// bf16 / fp16 on tensor cores: the same phases; fp32 accumulation, one rounding on the way out.
TEST(BackendConvBwd, HalfBackwardDataMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::bf16, DType::f16}) {
    const double out_rounding = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    for (size_t i : {0u, 2u, 3u, 5u, 11u}) {
      const BwdCase& c = cases()[i];
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Tensor dy = randn_seeded(out_shape(c), 13, DType::f32).to(dt);
      const Tensor w =
          randn_seeded({c.Cout, c.Cin / c.p.groups, c.kH, c.kW}, 14, DType::f32).to(dt);
      Tensor dx = Tensor::empty({c.N, c.Cin, c.H, c.W}, dt, kCuda);
      kernels::conv2d_backward_data_table().get(kCuda)(dy.to(kCuda), w.to(kCuda), c.p, dx);
      expect_within_bound(c, dx, dy, w, std::ldexp(1.0, -24), out_rounding);
    }
  }
}

}  // namespace
}  // namespace iris
