// Backend comparison for conv2d: the CUDA implicit-GEMM kernels (emulated in CI, real under
// `ctest -L cuda`) against the CPU backend, each direction through the kernel tables and
// the op through autograd, on shapes that are not multiples of the 64x64x16 tiles, with
// stride, padding, dilation, groups (depthwise included), bias and no bias. bf16 / fp16
// forward (tensor cores) against an fp32 CPU reference on the 16-bit-rounded inputs, and the
// bf16 / fp16 backward (tensor cores) against fp64 by the twice-the-naive-error rule.
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/conv.h"
#include "kernels/conv.h"
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct ConvCase {
  const char* name;
  int64_t N, Cin, H, W, Cout, kH, kW;
  kernels::Conv2dParams p;
  bool bias;
};

const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> all = {
      {"3x3 same", 2, 3, 7, 9, 5, 3, 3, {1, 1, 1, 1, 1, 1, 1}, true},
      {"stride 2x3 pad 1x2", 2, 4, 11, 10, 6, 3, 3, {2, 3, 1, 2, 1, 1, 1}, false},
      {"dilation 2x3", 1, 3, 9, 8, 4, 3, 2, {1, 1, 2, 1, 2, 3, 1}, true},
      {"groups 3", 2, 6, 6, 7, 9, 3, 3, {1, 2, 1, 1, 1, 1, 3}, true},
      {"depthwise stride 2", 2, 5, 8, 7, 5, 3, 3, {2, 2, 1, 1, 1, 1, 5}, false},
      {"depthwise x2 channels", 1, 4, 6, 5, 8, 3, 3, {1, 1, 1, 1, 1, 1, 4}, true},
      {"pointwise, Cout over a tile", 3, 7, 5, 6, 70, 1, 1, {1, 1, 0, 0, 1, 1, 1}, true},
      {"stride beyond kernel", 2, 3, 10, 11, 4, 2, 2, {3, 3, 0, 1, 1, 1, 1}, true},
      {"split-K reduction 5x5", 3, 2, 20, 20, 3, 5, 5, {1, 1, 2, 2, 1, 1, 1}, true},
      // K = 72: 16-byte aligned weight rows (cp.async staging on the tensor-core path)
      {"aligned weight rows", 2, 8, 9, 10, 12, 3, 3, {2, 2, 1, 1, 1, 1, 1}, true},
  };
  return all;
}

Shape out_shape(const ConvCase& c) {
  return {c.N, c.Cout,
          kernels::conv_output_size(c.H, c.kH, c.p.stride_h, c.p.pad_h, c.p.dilation_h),
          kernels::conv_output_size(c.W, c.kW, c.p.stride_w, c.p.pad_w, c.p.dilation_w)};
}

double tol(DType dt) { return dt == DType::f64 ? 1e-12 : 1e-5; }

// Tensors on both devices: x, w, bias (maybe undefined), dy.
struct Operands {
  Tensor x, w, b, dy;
  Operands(const ConvCase& c, DType dt)
      : x(randn_seeded({c.N, c.Cin, c.H, c.W}, 1, dt)),
        w(randn_seeded({c.Cout, c.Cin / c.p.groups, c.kH, c.kW}, 2, dt)),
        b(c.bias ? randn_seeded({c.Cout}, 3, dt) : Tensor()),
        dy(randn_seeded(out_shape(c), 4, dt)) {}
};

Tensor to_cuda(const Tensor& t) { return t.defined() ? t.to(kCuda) : Tensor(); }

TEST(BackendConv, EachDirectionMatchesCpuThroughTheTables) {
  IRIS_REQUIRE_CUDA();
  const Device cpu = Device::cpu();
  for (DType dt : {DType::f32, DType::f64}) {
    const double t = tol(dt);
    for (const ConvCase& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Operands o(c, dt);
      const Tensor xg = o.x.to(kCuda), wg = o.w.to(kCuda), bg = to_cuda(o.b), dyg = o.dy.to(kCuda);

      Tensor yc = Tensor::empty(out_shape(c), dt), yg = Tensor::empty(out_shape(c), dt, kCuda);
      kernels::conv2d_forward_table().get(cpu)(o.x, o.w, o.b, c.p, yc);
      kernels::conv2d_forward_table().get(kCuda)(xg, wg, bg, c.p, yg);
      EXPECT_CLOSE(yg, yc, t, t) << "forward";

      Tensor dxc = Tensor::empty(o.x.shape(), dt), dxg = Tensor::empty(o.x.shape(), dt, kCuda);
      kernels::conv2d_backward_data_table().get(cpu)(o.dy, o.w, c.p, dxc);
      kernels::conv2d_backward_data_table().get(kCuda)(dyg, wg, c.p, dxg);
      EXPECT_CLOSE(dxg, dxc, t, t) << "backward data";

      Tensor dwc = Tensor::empty(o.w.shape(), dt), dwg = Tensor::empty(o.w.shape(), dt, kCuda);
      Tensor dbc, dbg;
      if (c.bias) dbc = Tensor::empty({c.Cout}, dt), dbg = Tensor::empty({c.Cout}, dt, kCuda);
      kernels::conv2d_backward_weight_table().get(cpu)(o.dy, o.x, c.p, dwc, dbc);
      kernels::conv2d_backward_weight_table().get(kCuda)(dyg, xg, c.p, dwg, dbg);
      EXPECT_CLOSE(dwg, dwc, t, t) << "backward weight";
      if (c.bias) {
        EXPECT_CLOSE(dbg, dbc, t, t) << "backward bias";
      }
    }
  }
}

TEST(BackendConv, Conv2dThroughAutogradMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    const double t = tol(dt);
    for (const ConvCase& c : {cases()[1], cases()[3], cases()[5]}) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Operands o(c, dt);
      auto leaf = [](const Tensor& v) {
        return v.defined() ? v.detach().set_requires_grad(true) : Tensor();
      };
      Tensor xc = leaf(o.x), wc = leaf(o.w), bc = leaf(o.b);
      Tensor xg = leaf(o.x.to(kCuda)), wg = leaf(o.w.to(kCuda)), bg = leaf(to_cuda(o.b));
      const std::array<int64_t, 2> stride{c.p.stride_h, c.p.stride_w}, pad{c.p.pad_h, c.p.pad_w},
          dil{c.p.dilation_h, c.p.dilation_w};
      Tensor yc = conv2d(xc, wc, bc, stride, pad, dil, c.p.groups);
      Tensor yg = conv2d(xg, wg, bg, stride, pad, dil, c.p.groups);
      ASSERT_TRUE(yg.device().is_cuda());
      EXPECT_CLOSE(yg, yc, t, t);
      yc.backward(o.dy);
      yg.backward(o.dy.to(kCuda));
      EXPECT_CLOSE(xg.grad(), xc.grad(), t, t) << "grad input";
      EXPECT_CLOSE(wg.grad(), wc.grad(), t, t) << "grad weight";
      if (c.bias) {
        EXPECT_CLOSE(bg.grad(), bc.grad(), t, t) << "grad bias";
      }
    }
  }
}

TEST(BackendConv, UnbatchedInputAndEmptyBatch) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({3, 6, 5}, 5, DType::f64), w = randn_seeded({4, 3, 2, 2}, 6);
  EXPECT_CLOSE(conv2d(x.to(kCuda), w.to(kCuda), Tensor(), {2, 1}, {1, 0}),
               conv2d(x, w, Tensor(), {2, 1}, {1, 0}), 1e-12, 1e-12);
  // N = 0: the weight gradient is an empty sum (zero), written over the poisoned buffer.
  const Tensor dy = Tensor::empty({0, 4, 3, 4}, DType::f64, kCuda);
  Tensor dw = Tensor::empty({4, 3, 2, 2}, DType::f64, kCuda),
         db = Tensor::empty({4}, DType::f64, kCuda);
  kernels::conv2d_backward_weight_table().get(kCuda)(
      dy, Tensor::empty({0, 3, 6, 5}, DType::f64, kCuda), {1, 1, 0, 0, 1, 1, 1}, dw, db);
  EXPECT_CLOSE(dw, zeros({4, 3, 2, 2}, DType::f64), 0, 0);
  EXPECT_CLOSE(db, zeros({4}, DType::f64), 0, 0);
}

float round_to(DType dt, float v) {
  return dt == DType::bf16 ? bf16_to_float(float_to_bf16(v)) : f16_to_float(float_to_f16(v));
}

// The naive forward in the 16-bit type: every product and partial sum rounded.
std::vector<float> naive_half_forward(const ConvCase& c, DType dt, const std::vector<float>& x,
                                      const std::vector<float>& w, const std::vector<float>& b) {
  const Shape os = out_shape(c);
  const int64_t OH = os[2], OW = os[3], G = c.p.groups, Cin_g = c.Cin / G, Cout_g = c.Cout / G;
  std::vector<float> y(static_cast<size_t>(c.N * c.Cout * OH * OW));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.Cout; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float acc = 0;
          for (int64_t ci = 0; ci < Cin_g; ++ci)
            for (int64_t kh = 0; kh < c.kH; ++kh)
              for (int64_t kw = 0; kw < c.kW; ++kw) {
                const int64_t ih = oh * c.p.stride_h - c.p.pad_h + kh * c.p.dilation_h;
                const int64_t iw = ow * c.p.stride_w - c.p.pad_w + kw * c.p.dilation_w;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const int64_t cin = co / Cout_g * Cin_g + ci;
                const float xv = x[((n * c.Cin + cin) * c.H + ih) * c.W + iw];
                const float wv = w[((co * Cin_g + ci) * c.kH + kh) * c.kW + kw];
                acc = round_to(dt, acc + round_to(dt, xv * wv));
              }
          if (!b.empty()) acc = round_to(dt, acc + b[co]);
          y[((n * c.Cout + co) * OH + oh) * OW + ow] = acc;
        }
  return y;
}

// Tolerance by the rule: the kernel's largest error against the fp32 reference is
// at most twice the naive computation's; and each element is within one 16-bit rounding
// plus the two fp32 accumulations (kernel, reference) of the reference.
TEST(BackendConv, HalfForwardOnTensorCoresMatchesAnFp32Reference) {
  IRIS_REQUIRE_CUDA();
  const Device cpu = Device::cpu();
  for (DType dt : {DType::bf16, DType::f16}) {
    const double u = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    for (const ConvCase& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Operands o(c, DType::f32);
      const Tensor x16 = o.x.to(dt), w16 = o.w.to(dt), b16 = c.bias ? o.b.to(dt) : Tensor();
      Tensor yg = Tensor::empty(out_shape(c), dt, kCuda);
      kernels::conv2d_forward_table().get(kCuda)(x16.to(kCuda), w16.to(kCuda), to_cuda(b16), c.p,
                                                 yg);
      // fp32 reference and the magnitude sum |x| |w| + |b| on the rounded inputs
      const Tensor xr = x16.to(DType::f32), wr = w16.to(DType::f32);
      const Tensor br = c.bias ? b16.to(DType::f32) : Tensor();
      Tensor ref = Tensor::empty(out_shape(c), DType::f32), mag = ref.clone();
      kernels::conv2d_forward_table().get(cpu)(xr, wr, br, c.p, ref);
      kernels::conv2d_forward_table().get(cpu)(abs(xr), abs(wr), c.bias ? abs(br) : Tensor(), c.p,
                                               mag);
      const std::vector<float> got = yg.to_vector<float>(), want = ref.to_vector<float>();
      const std::vector<float> m = mag.to_vector<float>();
      const std::vector<float> naive =
          naive_half_forward(c, dt, xr.to_vector<float>(), wr.to_vector<float>(),
                             c.bias ? br.to_vector<float>() : std::vector<float>());
      const int64_t K = c.Cin / c.p.groups * c.kH * c.kW;
      double err = 0, naive_err = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
        ASSERT_LE(e, u * std::fabs(want[i]) + 2 * (K + 3) * std::ldexp(1.0, -24) * m[i] + 1e-30)
            << "at " << i << ": got " << got[i] << ", want " << want[i];
        err = std::max(err, e);
        naive_err = std::max(naive_err, std::fabs(static_cast<double>(naive[i]) - want[i]));
      }
      EXPECT_LE(err, 2 * naive_err) << "kernel error " << err << ", naive " << naive_err;
    }
  }
}

// The naive backward in the 16-bit type, tap by tap: every product and partial sum of dx,
// dw and db rounded.
struct HalfGrads {
  std::vector<float> dx, dw, db;
};
HalfGrads naive_half_backward(const ConvCase& c, DType dt, const std::vector<float>& x,
                              const std::vector<float>& w, const std::vector<float>& dy) {
  const Shape os = out_shape(c);
  const int64_t OH = os[2], OW = os[3], G = c.p.groups, Cin_g = c.Cin / G, Cout_g = c.Cout / G;
  HalfGrads g{std::vector<float>(x.size()), std::vector<float>(w.size()),
              std::vector<float>(static_cast<size_t>(c.Cout))};
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.Cout; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const float d = dy[((n * c.Cout + co) * OH + oh) * OW + ow];
          g.db[co] = round_to(dt, g.db[co] + d);
          for (int64_t ci = 0; ci < Cin_g; ++ci)
            for (int64_t kh = 0; kh < c.kH; ++kh)
              for (int64_t kw = 0; kw < c.kW; ++kw) {
                const int64_t ih = oh * c.p.stride_h - c.p.pad_h + kh * c.p.dilation_h;
                const int64_t iw = ow * c.p.stride_w - c.p.pad_w + kw * c.p.dilation_w;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const int64_t xi = ((n * c.Cin + co / Cout_g * Cin_g + ci) * c.H + ih) * c.W + iw;
                const int64_t wi = ((co * Cin_g + ci) * c.kH + kh) * c.kW + kw;
                g.dx[xi] = round_to(dt, g.dx[xi] + round_to(dt, w[wi] * d));
                g.dw[wi] = round_to(dt, g.dw[wi] + round_to(dt, x[xi] * d));
              }
        }
  return g;
}

double max_abs_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(worst, e);
  }
  return worst;
}

// bf16 / fp16 backward-data and backward-weight (and bias) on tensor cores, through the
// tables: each gradient's largest error against an fp64 reference on the same 16-bit inputs is
// at most twice the naive 16-bit computation's. Through autograd, a 16-bit conv2d on the
// device gives the same gradients bit for bit (the kernels are deterministic).
TEST(BackendConv, HalfBackwardOnTensorCoresWithinTwiceTheNaiveError) {
  IRIS_REQUIRE_CUDA();
  const Device cpu = Device::cpu();
  for (DType dt : {DType::bf16, DType::f16}) {
    for (size_t ci = 0; ci < cases().size(); ++ci) {
      const ConvCase& c = cases()[ci];
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const Operands o(c, DType::f32);
      const Tensor x16 = o.x.to(dt), w16 = o.w.to(dt), dy16 = o.dy.to(dt);
      const Tensor xg = x16.to(kCuda), wg = w16.to(kCuda), dyg = dy16.to(kCuda);
      Tensor dxg = Tensor::empty(o.x.shape(), dt, kCuda),
             dwg = Tensor::empty(o.w.shape(), dt, kCuda);
      Tensor dbg = c.bias ? Tensor::empty({c.Cout}, dt, kCuda) : Tensor();
      kernels::conv2d_backward_data_table().get(kCuda)(dyg, wg, c.p, dxg);
      kernels::conv2d_backward_weight_table().get(kCuda)(dyg, xg, c.p, dwg, dbg);
      EXPECT_EQ(dxg.dtype(), dt);

      const Tensor xr = x16.to(DType::f64), wr = w16.to(DType::f64), dyr = dy16.to(DType::f64);
      Tensor dxr = Tensor::empty(o.x.shape(), DType::f64),
             dwr = Tensor::empty(o.w.shape(), DType::f64);
      Tensor dbr = Tensor::empty({c.Cout}, DType::f64);
      kernels::conv2d_backward_data_table().get(cpu)(dyr, wr, c.p, dxr);
      kernels::conv2d_backward_weight_table().get(cpu)(dyr, xr, c.p, dwr, dbr);
      const HalfGrads naive = naive_half_backward(c, dt, x16.to(DType::f32).to_vector<float>(),
                                                  w16.to(DType::f32).to_vector<float>(),
                                                  dy16.to(DType::f32).to_vector<float>());
      struct Grad {
        const char* name;
        Tensor got, ref;
        const std::vector<float>& naive;
      };
      std::vector<Grad> grads = {{"dx", dxg, dxr, naive.dx}, {"dw", dwg, dwr, naive.dw}};
      if (c.bias) grads.push_back({"db", dbg, dbr, naive.db});
      for (const Grad& g : grads) {
        const std::vector<double> ref = g.ref.to_vector<double>();
        const double err = max_abs_error(g.got.to(DType::f32).to(cpu).to_vector<float>(), ref);
        const double naive_err = max_abs_error(g.naive, ref);
        EXPECT_LE(err, 2 * naive_err) << g.name << ": kernel " << err << ", naive " << naive_err;
        EXPECT_GT(naive_err, 0) << g.name;
      }

      if (ci != 1 && ci != 3) continue;  // autograd: stride + padding, groups with bias
      auto leaf = [](const Tensor& v) { return v.detach().set_requires_grad(true); };
      Tensor xa = leaf(xg), wa = leaf(wg), ba = c.bias ? leaf(o.b.to(dt).to(kCuda)) : Tensor();
      const std::array<int64_t, 2> stride{c.p.stride_h, c.p.stride_w}, pad{c.p.pad_h, c.p.pad_w},
          dil{c.p.dilation_h, c.p.dilation_w};
      conv2d(xa, wa, ba, stride, pad, dil, c.p.groups).backward(dyg);
      ASSERT_EQ(xa.grad().dtype(), dt);
      EXPECT_CLOSE(xa.grad().to(DType::f32), dxg.to(DType::f32), 0, 0) << "autograd dx";
      EXPECT_CLOSE(wa.grad().to(DType::f32), dwg.to(DType::f32), 0, 0) << "autograd dw";
      if (c.bias) {
        EXPECT_CLOSE(ba.grad().to(DType::f32), dbg.to(DType::f32), 0, 0) << "autograd db";
      }
    }
  }
}

TEST(BackendConv, UnsupportedDtypeNamesTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({1, 2, 4, 4}, 7, DType::f32).to(DType::i32).to(kCuda);
  const Tensor w = randn_seeded({2, 2, 3, 3}, 8, DType::f32).to(DType::i32).to(kCuda);
  Tensor y = Tensor::empty({1, 2, 2, 2}, DType::i32, kCuda);
  EXPECT_IRIS_ERROR(kernels::conv2d_forward_table().get(kCuda)(x, w, Tensor(), {}, y),
                    "conv2d: unsupported dtype");
}

}  // namespace
}  // namespace iris
