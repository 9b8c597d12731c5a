// bf16/fp16 embedding, dropout, pooling, batch norm, LSTM/GRU cells and index_add /
// scatter_add on the CPU. Two checks per op and direction:
// - fp32 inside, one rounding: the 16-bit result has the bits of the fp32 path run on the
//   same (16-bit) values, rounded once to the 16-bit type;
// - the house rule: the error against an fp64 reference is at most 2x that of the naive
//   computation in the same 16-bit precision (every step rounded, sums in order).
// Shapes are odd on purpose (no multiple of any tile or vector width).
#include <cmath>
#include <functional>
#include <vector>

#include "autograd/conv.h"
#include "autograd/index_ops.h"
#include "autograd/nn_ops.h"
#include "core/rng.h"
#include "kernels/rnn.h"
#include "tests/support/half_rule.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::from_doubles;
using testing::r16;
using testing::randn_seeded;
using testing::same_bits;
using testing::within_rule;

const DType kHalfTypes[] = {DType::bf16, DType::f16};

Tensor leaf(const Tensor& t) { return t.detach().set_requires_grad(true); }
// Standard normal values rounded to dt (optionally shifted: sums near a large value lose digits
// in 16-bit arithmetic).
Tensor rand16(const Shape& s, uint64_t seed, DType dt, double shift = 0.0) {
  Tensor t = randn_seeded(s, seed, DType::f32);
  if (shift != 0.0) t = add(t, full(s, shift));
  return t.to(dt);
}

// ---- embedding ----

TEST(HalfNnOps, EmbeddingCopiesRowsAndSumsGradientsInFloat) {
  const int64_t V = 11, D = 13, n = 301, pad = 3;
  std::vector<int64_t> id(n);
  for (int64_t k = 0; k < n; ++k) id[k] = (k * 7 + k / 5) % V;
  const Tensor ids = Tensor::from_vector<int64_t>(id, {n});
  for (DType dt : kHalfTypes) {
    const Tensor w = rand16({V, D}, 1, dt);
    const Tensor dy = rand16({n, D}, 2, dt, 1.0);
    Tensor w16 = leaf(w), w32 = leaf(w.to(DType::f32)), w64 = leaf(w.to(DType::f64));
    Tensor y16 = embedding(w16, ids, pad), y32 = embedding(w32, ids, pad),
           y64 = embedding(w64, ids, pad);
    ASSERT_EQ(y16.dtype(), dt);
    EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt;  // a copy
    y16.backward(dy);
    y32.backward(dy.to(DType::f32));
    y64.backward(dy.to(DType::f64));
    ASSERT_EQ(w16.grad().dtype(), dt);
    EXPECT_TRUE(same_bits(w16.grad(), w32.grad().to(dt))) << "dweight " << dt;
    const std::vector<double> g = dy.to_vector<double>();
    std::vector<double> naive(V * D, 0.0);
    for (int64_t k = 0; k < n; ++k)
      if (id[k] != pad)
        for (int64_t j = 0; j < D; ++j)
          naive[id[k] * D + j] = r16(naive[id[k] * D + j] + g[k * D + j], dt);
    EXPECT_TRUE(within_rule(w16.grad(), from_doubles(naive, {V, D}), w64.grad())) << dt;
  }
}

// ---- dropout ----

TEST(HalfNnOps, DropoutKeepsTheFp32MaskAndScalesInFloat) {
  const double p = 0.3;
  for (DType dt : kHalfTypes) {
    const Tensor x = rand16({37, 29}, 3, dt);
    Generator g16(77), g32(77), g64(77);
    Tensor x16 = leaf(x), x32 = leaf(x.to(DType::f32)), x64 = leaf(x.to(DType::f64));
    Tensor y16 = dropout(x16, p, true, &g16), y32 = dropout(x32, p, true, &g32),
           y64 = dropout(x64, p, true, &g64);
    ASSERT_EQ(y16.dtype(), dt);
    EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt;
    const std::vector<double> xv = x.to_vector<double>(), yv = y16.to_vector<double>();
    const double scale16 = r16(1.0 / (1.0 - p), dt);
    std::vector<double> naive(xv.size());
    int64_t dropped = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      const bool kept = y64.to_vector<double>()[i] != 0.0;
      dropped += !kept;
      naive[i] = kept ? r16(xv[i] * scale16, dt) : 0.0;
      ASSERT_EQ(kept, yv[i] != 0.0) << i;  // the fp64 mask is the 16-bit one
    }
    EXPECT_GT(dropped, 0);
    EXPECT_LT(dropped, static_cast<int64_t>(xv.size()));
    EXPECT_TRUE(within_rule(y16, from_doubles(naive, x.shape()), y64)) << dt;
    const Tensor dy = rand16(x.shape(), 4, dt);
    y16.backward(dy);
    y32.backward(dy.to(DType::f32));
    ASSERT_EQ(x16.grad().dtype(), dt);
    EXPECT_TRUE(same_bits(x16.grad(), x32.grad().to(dt))) << "backward " << dt;
  }
}

// ---- pooling ----

// The matrix M[out][in] of a linear map on one [1, 1, H, W] plane, probed in fp64.
using Matrix = std::vector<std::vector<double>>;
Matrix probe_plane(const std::function<Tensor(const Tensor&)>& f, int64_t H, int64_t W) {
  Matrix m;
  for (int64_t j = 0; j < H * W; ++j) {
    std::vector<double> e(H * W, 0.0);
    e[j] = 1.0;
    const std::vector<double> y = f(from_doubles(e, {1, 1, H, W})).to_vector<double>();
    if (m.empty()) m.assign(y.size(), std::vector<double>(H * W, 0.0));
    for (size_t i = 0; i < y.size(); ++i) m[i][j] = y[i];
  }
  return m;
}

// M (or its transpose) applied to every plane of v, naive: out_i = sum_j r16(M_ij v_j) in order.
Tensor naive_planes(const Matrix& m, bool transpose, const Tensor& v, const Shape& out_shape,
                    DType dt) {
  const int64_t rows = static_cast<int64_t>(m.size()), cols = static_cast<int64_t>(m[0].size());
  const int64_t n_out = transpose ? cols : rows, n_in = transpose ? rows : cols;
  const std::vector<double> x = v.to_vector<double>();
  const int64_t planes = static_cast<int64_t>(x.size()) / n_in;
  std::vector<double> out(planes * n_out, 0.0);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < n_out; ++i) {
      double s = 0;
      for (int64_t j = 0; j < n_in; ++j) {
        const double c = transpose ? m[j][i] : m[i][j];
        if (c != 0.0) s = r16(s + r16(c * x[p * n_in + j], dt), dt);
      }
      out[p * n_out + i] = s;
    }
  return from_doubles(out, out_shape);
}

void check_avg_pool(const char* name, const std::function<Tensor(const Tensor&)>& f, DType dt) {
  const int64_t H = 9, W = 11;
  const Tensor x = rand16({2, 3, H, W}, 5, dt, 1.0);
  Tensor x16 = leaf(x), x32 = leaf(x.to(DType::f32)), x64 = leaf(x.to(DType::f64));
  Tensor y16 = f(x16), y32 = f(x32), y64 = f(x64);
  ASSERT_EQ(y16.dtype(), dt) << name;
  EXPECT_TRUE(same_bits(y16, y32.to(dt))) << name << " " << dt;
  const Matrix m = probe_plane(f, H, W);
  EXPECT_TRUE(within_rule(y16, naive_planes(m, false, x, y16.shape(), dt), y64))
      << name << " " << dt;
  const Tensor dy = rand16(y16.shape(), 6, dt, 1.0);
  y16.backward(dy);
  y32.backward(dy.to(DType::f32));
  y64.backward(dy.to(DType::f64));
  ASSERT_EQ(x16.grad().dtype(), dt) << name;
  EXPECT_TRUE(same_bits(x16.grad(), x32.grad().to(dt))) << name << " backward " << dt;
  EXPECT_TRUE(within_rule(x16.grad(), naive_planes(m, true, dy, x.shape(), dt), x64.grad()))
      << name << " backward " << dt;
}

TEST(HalfNnOps, AvgAndAdaptiveAvgPoolSumInFloat) {
  for (DType dt : kHalfTypes) {
    check_avg_pool(
        "avg_pool2d",
        [](const Tensor& t) {
          return avg_pool2d(t, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1}, true, false);
        },
        dt);
    check_avg_pool(
        "avg_pool2d overlapping",
        [](const Tensor& t) {
          return avg_pool2d(t, {4, 3}, std::array<int64_t, 2>{1, 1});
        },
        dt);
    check_avg_pool(
        "adaptive_avg_pool2d",
        [](const Tensor& t) {
          return adaptive_avg_pool2d(t, {4, 3});
        },
        dt);
  }
}

TEST(HalfNnOps, MaxPoolIsExactAndRoutesGradientsInFloat) {
  for (DType dt : kHalfTypes) {
    const Tensor x = rand16({2, 3, 9, 11}, 7, dt);
    auto f = [](const Tensor& t) {
      return max_pool2d_with_indices(t, {3, 3}, std::array<int64_t, 2>{1, 1}, {1, 1});
    };
    Tensor x16 = leaf(x), x32 = leaf(x.to(DType::f32)), x64 = leaf(x.to(DType::f64));
    auto [y16, i16] = f(x16);
    auto [y32, i32] = f(x32);
    auto [y64, i64] = f(x64);
    ASSERT_EQ(y16.dtype(), dt);
    EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt;
    EXPECT_EQ(i16.to_vector<int64_t>(), i64.to_vector<int64_t>());
    // Overlapping windows: a maximum collects up to 9 gradients.
    const Tensor dy = rand16(y16.shape(), 8, dt, 1.0);
    y16.backward(dy);
    y32.backward(dy.to(DType::f32));
    y64.backward(dy.to(DType::f64));
    ASSERT_EQ(x16.grad().dtype(), dt);
    EXPECT_TRUE(same_bits(x16.grad(), x32.grad().to(dt))) << "backward " << dt;
    const std::vector<int64_t> idx = i16.to_vector<int64_t>();
    const std::vector<double> g = dy.to_vector<double>();
    const int64_t in_plane = 9 * 11, out_plane = y16.size(2) * y16.size(3);
    std::vector<double> naive(x.numel(), 0.0);
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t o = 0; o < out_plane; ++o) {
        double& d = naive[p * in_plane + idx[p * out_plane + o]];
        d = r16(d + g[p * out_plane + o], dt);
      }
    EXPECT_TRUE(within_rule(x16.grad(), from_doubles(naive, x.shape()), x64.grad()))
        << "backward " << dt;
  }
}

// ---- batch norm ----

// Training-mode batch norm of x [N, C, S], naive in dt: y, and the gradients from dy.
struct NaiveBatchNorm {
  Tensor y, dx, dw, db;
};
NaiveBatchNorm naive_batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy,
                                double eps, DType dt) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), M = N * S;
  const std::vector<double> xv = x.to_vector<double>(), gv = dy.to_vector<double>(),
                            wv = w.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> y(xv.size()), dx(xv.size()), dw(C), db(C), xhat(M);
  auto at = [&](int64_t c, int64_t m) { return (m / S) * C * S + c * S + m % S; };
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t m = 0; m < M; ++m) s = r16(s + xv[at(c, m)], dt);
    const double mean = r16(s / static_cast<double>(M), dt);
    for (int64_t m = 0; m < M; ++m) {
      const double d = r16(xv[at(c, m)] - mean, dt);
      ss = r16(ss + r16(d * d, dt), dt);
    }
    const double var = r16(ss / static_cast<double>(M), dt);
    const double rstd = r16(1.0 / r16(std::sqrt(r16(var + eps, dt)), dt), dt);
    double sg = 0, sgx = 0, sw = 0, sb = 0;
    for (int64_t m = 0; m < M; ++m) {
      const int64_t e = at(c, m);
      xhat[m] = r16(r16(xv[e] - mean, dt) * rstd, dt);
      y[e] = r16(r16(xhat[m] * wv[c], dt) + bv[c], dt);
      const double g = r16(gv[e] * wv[c], dt);
      sg = r16(sg + g, dt);
      sgx = r16(sgx + r16(g * xhat[m], dt), dt);
      sw = r16(sw + r16(gv[e] * xhat[m], dt), dt);
      sb = r16(sb + gv[e], dt);
    }
    dw[c] = sw, db[c] = sb;
    const double mg = r16(sg / static_cast<double>(M), dt);
    const double mgx = r16(sgx / static_cast<double>(M), dt);
    for (int64_t m = 0; m < M; ++m) {
      const double g = r16(gv[at(c, m)] * wv[c], dt);
      dx[at(c, m)] = r16(rstd * r16(r16(g - mg, dt) - r16(xhat[m] * mgx, dt), dt), dt);
    }
  }
  return {from_doubles(y, x.shape()), from_doubles(dx, x.shape()), from_doubles(dw, {C}),
          from_doubles(db, {C})};
}

// x [5, 7, 3, 5] (shifted: the statistics cancel), parameters in pdt (float32, or the input's).
void check_batch_norm(DType dt, DType pdt) {
  const int64_t N = 5, C = 7;
  const Tensor x = rand16({N, C, 3, 5}, 9, dt, 2.0);
  const Tensor w = add(randn_seeded({C}, 10, DType::f32), full({C}, 1.0)).to(pdt);
  const Tensor b = randn_seeded({C}, 11, DType::f32).to(pdt);
  const Tensor dy = rand16(x.shape(), 12, dt, 0.5);
  Tensor x16 = leaf(x), w16 = leaf(w), b16 = leaf(b);
  Tensor x32 = leaf(x.to(DType::f32)), w32 = leaf(w.to(DType::f32)), b32 = leaf(b.to(DType::f32));
  Tensor x64 = leaf(x.to(DType::f64)), w64 = leaf(w.to(DType::f64)), b64 = leaf(b.to(DType::f64));
  Tensor rm = zeros({C}, pdt), rv = ones({C}, pdt);
  Tensor rm32 = zeros({C}, DType::f32), rv32 = ones({C}, DType::f32);
  Tensor y16 = batch_norm(x16, rm, rv, w16, b16, true, 0.1, 1e-5);
  Tensor y32 = batch_norm(x32, rm32, rv32, w32, b32, true, 0.1, 1e-5);
  Tensor y64 = batch_norm(x64, Tensor(), Tensor(), w64, b64, true, 0.1, 1e-5);
  ASSERT_EQ(y16.dtype(), dt);
  EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt << " params " << pdt;
  EXPECT_TRUE(same_bits(rm, rm32.to(pdt))) << "running_mean " << dt;
  EXPECT_TRUE(same_bits(rv, rv32.to(pdt))) << "running_var " << dt;
  const Tensor x3 = x.reshape({N, C, 15}), dy3 = dy.reshape({N, C, 15});
  const NaiveBatchNorm naive = naive_batch_norm(x3, w, b, dy3, 1e-5, dt);
  EXPECT_TRUE(within_rule(y16, naive.y.reshape(x.shape()), y64)) << dt << " params " << pdt;
  y16.backward(dy);
  y32.backward(dy.to(DType::f32));
  y64.backward(dy.to(DType::f64));
  ASSERT_EQ(x16.grad().dtype(), dt);
  ASSERT_EQ(w16.grad().dtype(), pdt);
  ASSERT_EQ(b16.grad().dtype(), pdt);
  EXPECT_TRUE(same_bits(x16.grad(), x32.grad().to(dt))) << "dx " << dt << " params " << pdt;
  EXPECT_TRUE(same_bits(w16.grad(), w32.grad().to(pdt))) << "dweight " << dt;
  EXPECT_TRUE(same_bits(b16.grad(), b32.grad().to(pdt))) << "dbias " << dt;
  EXPECT_TRUE(within_rule(x16.grad(), naive.dx.reshape(x.shape()), x64.grad()))
      << "dx " << dt << " params " << pdt;
  if (pdt == dt) {
    EXPECT_TRUE(within_rule(w16.grad(), naive.dw, w64.grad())) << "dweight " << dt;
    EXPECT_TRUE(within_rule(b16.grad(), naive.db, b64.grad())) << "dbias " << dt;
  }
  // eval: the running statistics, and the gradient of a constant normalisation
  Tensor e16 = leaf(x), e32 = leaf(x.to(DType::f32));
  Tensor z16 = batch_norm(e16, rm, rv, w, b, false, 0.1, 1e-5);
  Tensor z32 = batch_norm(e32, rm.to(DType::f32), rv.to(DType::f32), w.to(DType::f32),
                          b.to(DType::f32), false, 0.1, 1e-5);
  EXPECT_TRUE(same_bits(z16, z32.to(dt))) << "eval " << dt;
  z16.backward(dy);
  z32.backward(dy.to(DType::f32));
  EXPECT_TRUE(same_bits(e16.grad(), e32.grad().to(dt))) << "eval dx " << dt;
}

TEST(HalfNnOps, BatchNormFp32StatisticsMixedAndSameDtypeParams) {
  for (DType dt : kHalfTypes) {
    check_batch_norm(dt, DType::f32);
    check_batch_norm(dt, dt);
  }
}

// ---- LSTM / GRU cells (the fused kernels; the CPU GEMM of the cell ops is float32/float64) ----

using Values = std::vector<double>;
double sigmoid64(double v) { return 1.0 / (1.0 + std::exp(-v)); }

struct LstmOut {
  Tensor h, c, act;
};
LstmOut lstm_forward(const Tensor& gx, const Tensor& gh, const Tensor& c) {
  const int64_t B = c.size(0), H = c.size(1);
  LstmOut o{Tensor::empty({B, H}, c.dtype()), Tensor::empty({B, H}, c.dtype()),
            Tensor::empty({B, 4 * H}, c.dtype())};
  kernels::lstm_cell_forward_table().get(Device::cpu())(gx, gh, c, o.h, o.c, o.act);
  return o;
}
struct LstmGrads {
  Tensor dgates, dc;
};
LstmGrads lstm_backward(const Tensor& dh, const Tensor& dc, const LstmOut& f, const Tensor& c) {
  LstmGrads g{Tensor::empty(f.act.shape(), c.dtype()), Tensor::empty(c.shape(), c.dtype())};
  kernels::lstm_cell_backward_table().get(Device::cpu())(dh, dc, f.act, c, f.c, g.dgates, g.dc);
  return g;
}
Tensor f32(const Tensor& t) { return t.to(DType::f32); }
Tensor f64(const Tensor& t) { return t.to(DType::f64); }

TEST(HalfNnOps, LstmCellKernelsComputeInFloat) {
  const int64_t B = 3, H = 37;
  for (DType dt : kHalfTypes) {
    const Tensor gx = rand16({B, 4 * H}, 13, dt), gh = rand16({B, 4 * H}, 14, dt);
    const Tensor c = rand16({B, H}, 15, dt), dh = rand16({B, H}, 16, dt),
                 dc = rand16({B, H}, 17, dt);
    const LstmOut o16 = lstm_forward(gx, gh, c), o32 = lstm_forward(f32(gx), f32(gh), f32(c));
    const LstmOut o64 = lstm_forward(f64(gx), f64(gh), f64(c));
    EXPECT_TRUE(same_bits(o16.h, o32.h.to(dt))) << dt;
    EXPECT_TRUE(same_bits(o16.c, o32.c.to(dt))) << dt;
    EXPECT_TRUE(same_bits(o16.act, o32.act.to(dt))) << dt;
    // backward from the saved 16-bit activations: the fp32 kernel on the same values
    const LstmGrads g16 = lstm_backward(dh, dc, o16, c);
    const LstmGrads g32 =
        lstm_backward(f32(dh), f32(dc), {f32(o16.h), f32(o16.c), f32(o16.act)}, f32(c));
    const LstmGrads g64 = lstm_backward(f64(dh), f64(dc), o64, f64(c));
    EXPECT_TRUE(same_bits(g16.dgates, g32.dgates.to(dt))) << "dgates " << dt;
    EXPECT_TRUE(same_bits(g16.dc, g32.dc.to(dt))) << "dc " << dt;
    // naive: every step rounded to dt
    const Values x = gx.to_vector<double>(), hh = gh.to_vector<double>(),
                 cv = c.to_vector<double>(), dhv = dh.to_vector<double>(),
                 dcv = dc.to_vector<double>();
    Values hn(B * H), cn(B * H), dg(B * 4 * H), dcn(B * H);
    auto m = [dt](double a, double b) { return r16(a * b, dt); };
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        auto pre = [&](int64_t k) {
          return r16(hh[b * 4 * H + k * H + j] + x[b * 4 * H + k * H + j], dt);
        };
        const double i = r16(sigmoid64(pre(0)), dt), f = r16(sigmoid64(pre(1)), dt);
        const double g = r16(std::tanh(pre(2)), dt), o = r16(sigmoid64(pre(3)), dt);
        const int64_t e = b * H + j;
        cn[e] = r16(m(f, cv[e]) + m(i, g), dt);
        const double tc = r16(std::tanh(cn[e]), dt);
        hn[e] = m(o, tc);
        const double dct = r16(dcv[e] + m(m(dhv[e], o), r16(1 - m(tc, tc), dt)), dt);
        double* d = dg.data() + b * 4 * H;
        d[j] = m(m(m(dct, g), i), r16(1 - i, dt));
        d[H + j] = m(m(m(dct, cv[e]), f), r16(1 - f, dt));
        d[2 * H + j] = m(m(dct, i), r16(1 - m(g, g), dt));
        d[3 * H + j] = m(m(m(dhv[e], tc), o), r16(1 - o, dt));
        dcn[e] = m(dct, f);
      }
    EXPECT_TRUE(within_rule(o16.h, from_doubles(hn, {B, H}), o64.h)) << "h " << dt;
    EXPECT_TRUE(within_rule(o16.c, from_doubles(cn, {B, H}), o64.c)) << "c " << dt;
    EXPECT_TRUE(within_rule(g16.dgates, from_doubles(dg, {B, 4 * H}), g64.dgates))
        << "dgates " << dt;
    EXPECT_TRUE(within_rule(g16.dc, from_doubles(dcn, {B, H}), g64.dc)) << "dc " << dt;
  }
}

struct GruOut {
  Tensor h, saved;
};
GruOut gru_forward(const Tensor& gx, const Tensor& gh, const Tensor& h) {
  const int64_t B = h.size(0), H = h.size(1);
  GruOut o{Tensor::empty({B, H}, h.dtype()), Tensor::empty({B, 4 * H}, h.dtype())};
  kernels::gru_cell_forward_table().get(Device::cpu())(gx, gh, h, o.h, o.saved);
  return o;
}
struct GruGrads {
  Tensor dgx, dgh, dh;
};
GruGrads gru_backward(const Tensor& dy, const Tensor& saved, const Tensor& h) {
  const int64_t B = h.size(0), H = h.size(1);
  GruGrads g{Tensor::empty({B, 3 * H}, h.dtype()), Tensor::empty({B, 3 * H}, h.dtype()),
             Tensor::empty({B, H}, h.dtype())};
  kernels::gru_cell_backward_table().get(Device::cpu())(dy, saved, h, g.dgx, g.dgh, g.dh);
  return g;
}

TEST(HalfNnOps, GruCellKernelsComputeInFloat) {
  const int64_t B = 3, H = 37;
  for (DType dt : kHalfTypes) {
    const Tensor gx = rand16({B, 3 * H}, 18, dt), gh = rand16({B, 3 * H}, 19, dt);
    const Tensor h = rand16({B, H}, 20, dt), dy = rand16({B, H}, 21, dt);
    const GruOut o16 = gru_forward(gx, gh, h), o32 = gru_forward(f32(gx), f32(gh), f32(h));
    const GruOut o64 = gru_forward(f64(gx), f64(gh), f64(h));
    EXPECT_TRUE(same_bits(o16.h, o32.h.to(dt))) << dt;
    EXPECT_TRUE(same_bits(o16.saved, o32.saved.to(dt))) << dt;
    const GruGrads g16 = gru_backward(dy, o16.saved, h);
    const GruGrads g32 = gru_backward(f32(dy), f32(o16.saved), f32(h));
    const GruGrads g64 = gru_backward(f64(dy), o64.saved, f64(h));
    EXPECT_TRUE(same_bits(g16.dgx, g32.dgx.to(dt))) << "dgates_x " << dt;
    EXPECT_TRUE(same_bits(g16.dgh, g32.dgh.to(dt))) << "dgates_h " << dt;
    EXPECT_TRUE(same_bits(g16.dh, g32.dh.to(dt))) << "dh " << dt;
    const Values x = gx.to_vector<double>(), hh = gh.to_vector<double>(),
                 hv = h.to_vector<double>(), g = dy.to_vector<double>();
    Values hn(B * H), dgx(B * 3 * H), dgh(B * 3 * H), dhn(B * H);
    auto m = [dt](double a, double b) { return r16(a * b, dt); };
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t e = b * H + j, q = b * 3 * H + j;
        const double r = r16(sigmoid64(r16(hh[q] + x[q], dt)), dt);
        const double z = r16(sigmoid64(r16(hh[q + H] + x[q + H], dt)), dt);
        const double hnv = hh[q + 2 * H];
        const double n = r16(std::tanh(r16(x[q + 2 * H] + m(hnv, r), dt)), dt);
        hn[e] = r16(m(r16(hv[e] - n, dt), z) + n, dt);
        const double dn = m(m(g[e], r16(1 - z, dt)), r16(1 - m(n, n), dt));
        const double dz = m(m(m(g[e], r16(hv[e] - n, dt)), z), r16(1 - z, dt));
        const double dr = m(m(m(dn, hnv), r), r16(1 - r, dt));
        dgx[q] = dr, dgx[q + H] = dz, dgx[q + 2 * H] = dn;
        dgh[q] = dr, dgh[q + H] = dz, dgh[q + 2 * H] = m(dn, r);
        dhn[e] = m(g[e], z);
      }
    EXPECT_TRUE(within_rule(o16.h, from_doubles(hn, {B, H}), o64.h)) << "h " << dt;
    EXPECT_TRUE(within_rule(g16.dgx, from_doubles(dgx, {B, 3 * H}), g64.dgx)) << "dgx " << dt;
    EXPECT_TRUE(within_rule(g16.dgh, from_doubles(dgh, {B, 3 * H}), g64.dgh)) << "dgh " << dt;
    EXPECT_TRUE(within_rule(g16.dh, from_doubles(dhn, {B, H}), g64.dh)) << "dh " << dt;
  }
}

// ---- index_add / scatter_add ----

TEST(HalfNnOps, IndexAddAccumulatesInFloat) {
  for (DType dt : kHalfTypes) {
    for (int64_t dim : {0, 1}) {
      // 301 sources onto 7 rows (dim 0) or 6 columns (dim 1): ~40-50 terms per element
      const Shape xs = dim == 0 ? Shape{7, 13} : Shape{5, 6};
      const int64_t K = dim == 0 ? 301 : 263, R = xs[dim];
      std::vector<int64_t> id(K);
      for (int64_t k = 0; k < K; ++k) id[k] = (k * 5 + k / 3) % R;
      const Tensor idx = Tensor::from_vector<int64_t>(id, {K});
      const Shape ss = dim == 0 ? Shape{K, 13} : Shape{5, K};
      const Tensor x = rand16(xs, 22, dt), src = rand16(ss, 23, dt, 1.0);
      Tensor x16 = leaf(x), s16 = leaf(src);
      Tensor x32 = leaf(f32(x)), s32 = leaf(f32(src));
      const Tensor y16 = index_add(x16, dim, idx, s16), y32 = index_add(x32, dim, idx, s32);
      const Tensor y64 = index_add(f64(x), dim, idx, f64(src));
      ASSERT_EQ(y16.dtype(), dt);
      EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt << " dim " << dim;
      Values naive = x.to_vector<double>();
      const Values sv = src.to_vector<double>();
      const int64_t inner = dim == 0 ? 13 : 1, outer = dim == 0 ? 1 : 5;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < inner; ++j) {
            double& d = naive[(o * R + id[k]) * inner + j];
            d = r16(d + sv[(o * K + k) * inner + j], dt);
          }
      EXPECT_TRUE(within_rule(y16, from_doubles(naive, xs), y64)) << dt << " dim " << dim;
      // gradients are copies (index_select), in dt
      const Tensor dy = rand16(xs, 24, dt);
      y16.backward(dy);
      y32.backward(f32(dy));
      ASSERT_EQ(s16.grad().dtype(), dt);
      EXPECT_TRUE(same_bits(s16.grad(), s32.grad().to(dt))) << "dsource " << dt;
      EXPECT_TRUE(same_bits(x16.grad(), dy)) << "dx " << dt;
    }
  }
}

// x [R, C] += src [R, K] along dim 1 through index [R, K] in [0, C): ~K / C terms per element.
void check_scatter_add(DType dt, int64_t R, int64_t C, int64_t K) {
  std::vector<int64_t> id(R * K);
  for (int64_t i = 0; i < R * K; ++i) id[i] = (i * 7 + i / 11) % C;
  const Tensor idx = Tensor::from_vector<int64_t>(id, {R, K});
  const Tensor x = rand16({R, C}, 25, dt), src = rand16({R, K}, 26, dt, 1.0);
  Tensor x16 = leaf(x), s16 = leaf(src), x32 = leaf(f32(x)), s32 = leaf(f32(src));
  const Tensor y16 = scatter_add(x16, 1, idx, s16), y32 = scatter_add(x32, 1, idx, s32);
  const Tensor y64 = scatter_add(f64(x), 1, idx, f64(src));
  ASSERT_EQ(y16.dtype(), dt);
  EXPECT_TRUE(same_bits(y16, y32.to(dt))) << dt << " " << R << "x" << K;
  Values naive = x.to_vector<double>();
  const Values sv = src.to_vector<double>();
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) {
      double& d = naive[r * C + id[r * K + k]];
      d = r16(d + sv[r * K + k], dt);
    }
  EXPECT_TRUE(within_rule(y16, from_doubles(naive, {R, C}), y64)) << dt << " " << R << "x" << K;
  const Tensor dy = rand16({R, C}, 27, dt);
  y16.backward(dy);
  y32.backward(f32(dy));
  ASSERT_EQ(s16.grad().dtype(), dt);
  EXPECT_TRUE(same_bits(s16.grad(), s32.grad().to(dt))) << "dsrc " << dt;
  EXPECT_TRUE(same_bits(x16.grad(), dy)) << "dx " << dt;
}

TEST(HalfNnOps, ScatterAddAccumulatesInFloat) {
  for (DType dt : kHalfTypes) {
    check_scatter_add(dt, 3, 5, 203);    // few fibres, long ones
    check_scatter_add(dt, 2100, 3, 21);  // many fibres (the CUDA fibre kernel's case)
  }
}

// ---- errors ----

TEST(HalfNnOps, BadDtypesStillNameTheOp) {
  const Tensor xi = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  EXPECT_IRIS_ERROR(dropout(xi, 0.5), "dropout");
  EXPECT_IRIS_ERROR(max_pool2d(xi, {2, 2}), "max_pool2d");
  EXPECT_IRIS_ERROR(avg_pool2d(xi, {2, 2}), "avg_pool2d");
  EXPECT_IRIS_ERROR(adaptive_avg_pool2d(xi, {1, 1}), "adaptive_avg_pool2d");
  EXPECT_IRIS_ERROR(batch_norm(xi, Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm");
  EXPECT_IRIS_ERROR(embedding(xi.reshape({4, 2}), Tensor::from_vector<int64_t>({0}, {1})),
                    "embedding: weight must be");
  const Tensor b8 = ones({2, 2}).to(DType::b8);
  EXPECT_IRIS_ERROR(
      index_add(b8, 0, Tensor::from_vector<int64_t>({1}, {1}), ones({1, 2}).to(DType::b8)),
      "index_add");
  // batch norm parameters: the input's dtype or float32, never float64 for a bf16 input
  const Tensor xb = rand16({2, 3, 4}, 28, DType::bf16);
  EXPECT_IRIS_ERROR(batch_norm(xb, Tensor(), Tensor(), ones({3}, DType::f64), Tensor(), true),
                    "batch_norm: weight");
  EXPECT_IRIS_ERROR(
      batch_norm(xb, Tensor(), Tensor(), ones({3}, DType::f32), ones({3}, DType::bf16), true),
      "batch_norm: bias");
  const Tensor gi = Tensor::from_vector<int32_t>(std::vector<int32_t>(8, 0), {2, 4});
  const Tensor ci = Tensor::from_vector<int32_t>({0, 0}, {2, 1});
  Tensor h = Tensor::empty({2, 1}, DType::i32), c = Tensor::empty({2, 1}, DType::i32),
         a = Tensor::empty({2, 4}, DType::i32);
  EXPECT_IRIS_ERROR(kernels::lstm_cell_forward_table().get(Device::cpu())(gi, gi, ci, h, c, a),
                    "lstm_cell");
}

}  // namespace
}  // namespace iris
