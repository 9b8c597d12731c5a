// bf16/fp16 embedding, dropout, pooling, batch norm, LSTM/GRU cells and index_add /
// scatter_add: the CUDA device (emulated in CI, real under `ctest -L cuda`) against the CPU
// backend in the same dtype, forward and backward. Both compute in float and round once,
// summing in the same order, so most results must have the CPU's bits everywhere; batch norm
// reduces its (double) statistics in another order (one ulp on a GPU), and a real GPU's
// expf/tanhf and FMA contraction may move an LSTM/GRU value by an ulp or two.
#include <cmath>
#include <filesystem>
#include <functional>
#include <vector>

#include "autograd/conv.h"
#include "autograd/index_ops.h"
#include "autograd/nn_ops.h"
#include "autograd/rnn_ops.h"
#include "core/rng.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/rnn.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

const DType kHalfTypes[] = {DType::bf16, DType::f16};

bool emulated() {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").filename().string();
  return exe.size() > 4 && exe.substr(exe.size() - 4) == "_emu";
}

// The spacing of dt's values at v (one unit in the last place).
double ulp(double v, DType dt) {
  const int mantissa_bits = dt == DType::bf16 ? 7 : dt == DType::f16 ? 10 : 23;
  const double tiny = dt == DType::f16 ? 6.1035156e-05 : 1.1754944e-38;
  return std::ldexp(1.0, std::ilogb(std::max(std::abs(v), tiny)) - mantissa_bits);
}

// dev (moved to the CPU) equals cpu in dtype, shape and value, up to `ulps` units of the
// dtype (0: the same bits; NaN matches NaN).
::testing::AssertionResult matches_cpu(const Tensor& dev, const Tensor& cpu, int ulps = 0) {
  if (dev.dtype() != cpu.dtype() || dev.shape() != cpu.shape())
    return ::testing::AssertionFailure() << dev.desc() << " vs " << cpu.desc();
  const std::vector<double> x = dev.to(Device::cpu()).to_vector<double>(),
                            y = cpu.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))) continue;
    if (std::abs(x[i] - y[i]) <= ulps * ulp(y[i], cpu.dtype())) continue;
    return ::testing::AssertionFailure()
           << "element " << i << ": " << x[i] << " vs " << y[i] << " (" << ulps << " ulps allowed)";
  }
  return ::testing::AssertionSuccess();
}

Tensor leaf(const Tensor& t) { return t.detach().set_requires_grad(true); }
Tensor rand16(const Shape& s, uint64_t seed, DType dt, double shift = 0.0) {
  Tensor t = randn_seeded(s, seed, DType::f32);
  if (shift != 0.0) t = add(t, full(s, shift));
  return t.to(dt);
}

// f on a CPU leaf and a kCuda leaf made from the same host values; the outputs and the input
// gradients (from the same dy) must match within `ulps`.
void check_unary(const char* name, const std::function<Tensor(const Tensor&)>& f, const Tensor& x,
                 int ulps = 0) {
  Tensor xc = leaf(x), xg = leaf(x.to(kCuda));
  Tensor yc = f(xc), yg = f(xg);
  EXPECT_TRUE(matches_cpu(yg, yc, ulps)) << name << " " << x.dtype();
  const Tensor dy = rand16(yc.shape(), 99, yc.dtype(), 1.0);
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  ASSERT_EQ(xg.grad().dtype(), x.dtype()) << name;
  EXPECT_TRUE(matches_cpu(xg.grad(), xc.grad(), ulps)) << name << " backward " << x.dtype();
}

TEST(BackendHalfNnOps, EmbeddingMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  const int64_t V = 11, D = 45, n = 301;  // D: two column blocks, the second partial
  std::vector<int64_t> id(n);
  for (int64_t k = 0; k < n; ++k) id[k] = (k * 7 + k / 5) % V;
  const Tensor ids = Tensor::from_vector<int64_t>(id, {n});
  for (DType dt : kHalfTypes) {
    const Tensor w = rand16({V, D}, 1, dt);
    for (std::optional<int64_t> pad : {std::optional<int64_t>(), std::optional<int64_t>(3)}) {
      Tensor wc = leaf(w), wg = leaf(w.to(kCuda));
      Tensor yc = embedding(wc, ids, pad), yg = embedding(wg, ids.to(kCuda), pad);
      EXPECT_TRUE(matches_cpu(yg, yc)) << dt;
      const Tensor dy = rand16({n, D}, 2, dt, 1.0);
      yc.backward(dy);
      yg.backward(dy.to(kCuda));
      ASSERT_EQ(wg.grad().dtype(), dt);
      EXPECT_TRUE(matches_cpu(wg.grad(), wc.grad())) << "dweight " << dt;
    }
  }
}

TEST(BackendHalfNnOps, DropoutMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    const Tensor x = rand16({37, 29}, 3, dt);
    for (double p : {0.3, 0.9}) {
      Generator gc(55), gg(55);
      Tensor xc = leaf(x), xg = leaf(x.to(kCuda));
      gc.reserve(3), gg.reserve(3);  // an offset inside a Philox block
      Tensor yc = dropout(xc, p, true, &gc), yg = dropout(xg, p, true, &gg);
      EXPECT_TRUE(matches_cpu(yg, yc)) << dt << " p " << p;
      const Tensor dy = rand16(x.shape(), 4, dt);
      yc.backward(dy);
      yg.backward(dy.to(kCuda));
      EXPECT_TRUE(matches_cpu(xg.grad(), xc.grad())) << "backward " << dt << " p " << p;
    }
  }
}

TEST(BackendHalfNnOps, PoolingMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    const Tensor x = rand16({2, 3, 9, 11}, 5, dt, 1.0);  // 99-output planes: 4 warp steps
    check_unary(
        "max_pool2d overlapping",
        [](const Tensor& t) {
          return max_pool2d(t, {3, 3}, std::array<int64_t, 2>{1, 1}, {1, 1});
        },
        x);
    check_unary(
        "max_pool2d dilated",
        [](const Tensor& t) {
          return max_pool2d(t, {3, 2}, std::array<int64_t, 2>{2, 1}, {1, 1}, {2, 1}, true);
        },
        x);
    check_unary(
        "avg_pool2d",
        [](const Tensor& t) {
          return avg_pool2d(t, {3, 3}, std::array<int64_t, 2>{2, 2}, {1, 1}, true, false);
        },
        x);
    check_unary(
        "avg_pool2d overlapping",
        [](const Tensor& t) {
          return avg_pool2d(t, {4, 3}, std::array<int64_t, 2>{1, 1});
        },
        x);
    check_unary(
        "adaptive_avg_pool2d",
        [](const Tensor& t) {
          return adaptive_avg_pool2d(t, {4, 3});
        },
        x);
    const auto [yc, ic] = max_pool2d_with_indices(x, {3, 3}, std::array<int64_t, 2>{1, 1}, {1, 1});
    const auto [yg, ig] =
        max_pool2d_with_indices(x.to(kCuda), {3, 3}, std::array<int64_t, 2>{1, 1}, {1, 1});
    EXPECT_EQ(ig.to(Device::cpu()).to_vector<int64_t>(), ic.to_vector<int64_t>());
  }
}

// Training with running stats, then eval, forward and backward; parameters in pdt.
void check_batch_norm(const Shape& shape, DType dt, DType pdt) {
  SCOPED_TRACE(::testing::Message() << shape_str(shape) << " " << dt << " params " << pdt);
  const int64_t C = shape[1];
  const Tensor x = rand16(shape, 9, dt, 2.0);
  const Tensor w = add(randn_seeded({C}, 10, DType::f32), full({C}, 1.0)).to(pdt);
  const Tensor b = randn_seeded({C}, 11, DType::f32).to(pdt);
  const Tensor dy = rand16(shape, 12, dt, 0.5);
  // The device sums its double statistics in another order: the same float coefficients for
  // these inputs under the emulator, possibly one ulp apart (with FMA) on a GPU.
  const int bn_ulps = emulated() ? 0 : 1;
  for (bool training : {true, false}) {
    Tensor xd[2], wd[2], bd[2], rm[2], rv[2], y[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::cpu() : kCuda;
      xd[d] = leaf(x.to(dev)), wd[d] = leaf(w.to(dev)), bd[d] = leaf(b.to(dev));
      rm[d] = full({C}, 0.25, pdt, dev), rv[d] = full({C}, 1.5, pdt, dev);
      y[d] = batch_norm(xd[d], rm[d], rv[d], wd[d], bd[d], training, 0.1, 1e-5);
      y[d].backward(dy.to(dev));
    }
    EXPECT_TRUE(matches_cpu(y[1], y[0], bn_ulps)) << "forward, training " << training;
    EXPECT_TRUE(matches_cpu(rm[1], rm[0], bn_ulps)) << "running_mean";
    EXPECT_TRUE(matches_cpu(rv[1], rv[0], bn_ulps)) << "running_var";
    ASSERT_EQ(wd[1].grad().dtype(), pdt);
    EXPECT_TRUE(matches_cpu(xd[1].grad(), xd[0].grad(), bn_ulps)) << "dx, training " << training;
    EXPECT_TRUE(matches_cpu(wd[1].grad(), wd[0].grad(), bn_ulps))
        << "dweight, training " << training;
    EXPECT_TRUE(matches_cpu(bd[1].grad(), bd[0].grad(), bn_ulps)) << "dbias, training " << training;
  }
}

TEST(BackendHalfNnOps, BatchNormThreadWarpAndBlockRowsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes)
    for (const Shape& s : {Shape{6, 5, 2}, Shape{5, 7, 3, 5}, Shape{2, 3, 1100}})
      for (DType pdt : {DType::f32, dt}) check_batch_norm(s, dt, pdt);
}

// The fused LSTM and GRU kernels on both devices from the same 16-bit inputs.
TEST(BackendHalfNnOps, LstmAndGruKernelsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  const int ulps = emulated() ? 0 : 2;
  const int64_t B = 3, H = 37;
  for (DType dt : kHalfTypes) {
    const Tensor gx = rand16({B, 4 * H}, 13, dt), gh = rand16({B, 4 * H}, 14, dt);
    const Tensor c = rand16({B, H}, 15, dt), dh = rand16({B, H}, 16, dt),
                 dc = rand16({B, H}, 17, dt);
    Tensor h_out[2], c_out[2], act[2], dgates[2], dcs[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::cpu() : kCuda;
      h_out[d] = Tensor::empty({B, H}, dt, dev), c_out[d] = Tensor::empty({B, H}, dt, dev);
      act[d] = Tensor::empty({B, 4 * H}, dt, dev);
      kernels::lstm_cell_forward_table().get(dev)(gx.to(dev), gh.to(dev), c.to(dev), h_out[d],
                                                  c_out[d], act[d]);
      dgates[d] = Tensor::empty({B, 4 * H}, dt, dev), dcs[d] = Tensor::empty({B, H}, dt, dev);
      // backward from the CPU's saved values on both, so only the backward kernel is compared
      kernels::lstm_cell_backward_table().get(dev)(dh.to(dev), dc.to(dev), act[0].to(dev),
                                                   c.to(dev), c_out[0].to(dev), dgates[d], dcs[d]);
    }
    EXPECT_TRUE(matches_cpu(h_out[1], h_out[0], ulps)) << "lstm h " << dt;
    EXPECT_TRUE(matches_cpu(c_out[1], c_out[0], ulps)) << "lstm c " << dt;
    EXPECT_TRUE(matches_cpu(act[1], act[0], ulps)) << "lstm act " << dt;
    EXPECT_TRUE(matches_cpu(dgates[1], dgates[0], ulps)) << "lstm dgates " << dt;
    EXPECT_TRUE(matches_cpu(dcs[1], dcs[0], ulps)) << "lstm dc " << dt;

    const Tensor gx3 = rand16({B, 3 * H}, 18, dt), gh3 = rand16({B, 3 * H}, 19, dt);
    const Tensor h = rand16({B, H}, 20, dt);
    Tensor gh_out[2], saved[2], dgx[2], dgh[2], dhs[2];
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::cpu() : kCuda;
      gh_out[d] = Tensor::empty({B, H}, dt, dev), saved[d] = Tensor::empty({B, 4 * H}, dt, dev);
      kernels::gru_cell_forward_table().get(dev)(gx3.to(dev), gh3.to(dev), h.to(dev), gh_out[d],
                                                 saved[d]);
      dgx[d] = Tensor::empty({B, 3 * H}, dt, dev), dgh[d] = Tensor::empty({B, 3 * H}, dt, dev);
      dhs[d] = Tensor::empty({B, H}, dt, dev);
      kernels::gru_cell_backward_table().get(dev)(dh.to(dev), saved[0].to(dev), h.to(dev), dgx[d],
                                                  dgh[d], dhs[d]);
    }
    EXPECT_TRUE(matches_cpu(gh_out[1], gh_out[0], ulps)) << "gru h " << dt;
    EXPECT_TRUE(matches_cpu(saved[1], saved[0], ulps)) << "gru saved " << dt;
    EXPECT_TRUE(matches_cpu(dgx[1], dgx[0], ulps)) << "gru dgates_x " << dt;
    EXPECT_TRUE(matches_cpu(dgh[1], dgh[0], ulps)) << "gru dgates_h " << dt;
    EXPECT_TRUE(matches_cpu(dhs[1], dhs[0], ulps)) << "gru dh " << dt;
  }
}

// The cell ops run end to end in 16-bit on the device (the GEMMs on tensor cores): gradients
// come back in dt and near the float32 CPU result of the same values.
TEST(BackendHalfNnOps, LstmAndGruCellOpsRunIn16Bit) {
  IRIS_REQUIRE_CUDA();
  const int64_t B = 3, I = 10, H = 37;
  for (DType dt : kHalfTypes) {
    const double tol = dt == DType::bf16 ? 0.05 : 0.01;
    const Tensor x = rand16({B, I}, 30, dt), h = rand16({B, H}, 31, dt), c = rand16({B, H}, 32, dt);
    const Tensor w4 = mul(rand16({4 * H, I}, 33, DType::f32), full({4 * H, I}, 0.3)).to(dt);
    const Tensor u4 = mul(rand16({4 * H, H}, 34, DType::f32), full({4 * H, H}, 0.2)).to(dt);
    Tensor xg = leaf(x.to(kCuda)), wg = leaf(w4.to(kCuda));
    Tensor xc = leaf(x.to(DType::f32)), wc = leaf(w4.to(DType::f32));
    const LstmState sg = lstm_cell(xg, h.to(kCuda), c.to(kCuda), wg, u4.to(kCuda));
    const LstmState sc = lstm_cell(xc, h.to(DType::f32), c.to(DType::f32), wc, u4.to(DType::f32));
    ASSERT_EQ(sg.h.dtype(), dt);
    EXPECT_CLOSE(sg.h.to(Device::cpu()).to(DType::f32), sc.h, tol, tol) << dt;
    EXPECT_CLOSE(sg.c.to(Device::cpu()).to(DType::f32), sc.c, tol, tol) << dt;
    add(sum(sg.h), sum(sg.c)).backward();
    add(sum(sc.h), sum(sc.c)).backward();
    ASSERT_EQ(xg.grad().dtype(), dt);
    ASSERT_EQ(wg.grad().dtype(), dt);
    EXPECT_CLOSE(xg.grad().to(Device::cpu()).to(DType::f32), xc.grad(), tol, tol) << dt;
    EXPECT_CLOSE(wg.grad().to(Device::cpu()).to(DType::f32), wc.grad(), tol, tol) << dt;

    const Tensor w3 = w4.narrow(0, 0, 3 * H).contiguous(), u3 = u4.narrow(0, 0, 3 * H).contiguous();
    Tensor hg = leaf(h.to(kCuda)), hc = leaf(h.to(DType::f32));
    const Tensor yg = gru_cell(x.to(kCuda), hg, w3.to(kCuda), u3.to(kCuda));
    const Tensor yc = gru_cell(x.to(DType::f32), hc, w3.to(DType::f32), u3.to(DType::f32));
    ASSERT_EQ(yg.dtype(), dt);
    EXPECT_CLOSE(yg.to(Device::cpu()).to(DType::f32), yc, tol, tol) << "gru " << dt;
    sum(yg).backward();
    sum(yc).backward();
    ASSERT_EQ(hg.grad().dtype(), dt);
    EXPECT_CLOSE(hg.grad().to(Device::cpu()).to(DType::f32), hc.grad(), tol, tol) << "gru " << dt;
  }
}

TEST(BackendHalfNnOps, IndexAddAndScatterAddMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    for (int64_t dim : {0, 1}) {
      const Shape xs = dim == 0 ? Shape{7, 13} : Shape{5, 6};
      const int64_t K = dim == 0 ? 301 : 263, R = xs[dim];
      std::vector<int64_t> id(K);
      for (int64_t k = 0; k < K; ++k) id[k] = (k * 5 + k / 3) % R;
      const Tensor idx = Tensor::from_vector<int64_t>(id, {K});
      const Tensor src = rand16(dim == 0 ? Shape{K, 13} : Shape{5, K}, 23, dt, 1.0);
      const Tensor x = rand16(xs, 22, dt);
      Tensor sc = leaf(src), sg = leaf(src.to(kCuda));
      Tensor yc = index_add(x, dim, idx, sc), yg = index_add(x.to(kCuda), dim, idx.to(kCuda), sg);
      EXPECT_TRUE(matches_cpu(yg, yc)) << "index_add " << dt << " dim " << dim;
      const Tensor dy = rand16(xs, 24, dt);
      yc.backward(dy);
      yg.backward(dy.to(kCuda));
      EXPECT_TRUE(matches_cpu(sg.grad(), sc.grad())) << "index_add dsource " << dt;
    }
    // 5 fibres of 203 (the scan kernel) and 2100 fibres of 21 (the fibre kernel, float scratch)
    for (const auto& [R, C, K] : {std::array<int64_t, 3>{3, 5, 203}, {2100, 3, 21}}) {
      std::vector<int64_t> id(R * K);
      for (int64_t i = 0; i < R * K; ++i) id[i] = (i * 7 + i / 11) % C;
      const Tensor idx = Tensor::from_vector<int64_t>(id, {R, K});
      const Tensor x = rand16({R, C}, 25, dt), src = rand16({R, K}, 26, dt, 1.0);
      Tensor sc = leaf(src), sg = leaf(src.to(kCuda));
      Tensor yc = scatter_add(x, 1, idx, sc), yg = scatter_add(x.to(kCuda), 1, idx.to(kCuda), sg);
      EXPECT_TRUE(matches_cpu(yg, yc)) << "scatter_add " << dt << " " << R << "x" << K;
      const Tensor dy = rand16({R, C}, 27, dt);
      yc.backward(dy);
      yg.backward(dy.to(kCuda));
      EXPECT_TRUE(matches_cpu(sg.grad(), sc.grad())) << "scatter_add dsrc " << dt;
    }
  }
}

TEST(BackendHalfNnOps, BadDtypesNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor xi = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}, kCuda);
  EXPECT_IRIS_ERROR(dropout(xi, 0.5), "dropout");
  EXPECT_IRIS_ERROR(max_pool2d(xi, {2, 2}), "max_pool2d");
  EXPECT_IRIS_ERROR(avg_pool2d(xi, {2, 2}), "avg_pool2d");
  EXPECT_IRIS_ERROR(batch_norm(xi, Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm");
  EXPECT_IRIS_ERROR(kernels::dropout_apply_table().get(kCuda)(
                        xi, 0.5, 1, 0, Tensor::empty({8}, DType::i32, kCuda)),
                    "dropout");
  const Tensor ids = Tensor::from_vector<int64_t>({0, 1}, {2}, kCuda);
  EXPECT_IRIS_ERROR(kernels::embedding_backward_table().get(kCuda)(
                        xi.reshape({2, 4}), ids, -1, Tensor::empty({2, 4}, DType::i32, kCuda)),
                    "embedding_backward");
  const Tensor gi = Tensor::empty({2, 4}, DType::i32, kCuda),
               ci = Tensor::empty({2, 1}, DType::i32, kCuda);
  Tensor h = Tensor::empty({2, 1}, DType::i32, kCuda), c = Tensor::empty({2, 1}, DType::i32, kCuda),
         a = Tensor::empty({2, 4}, DType::i32, kCuda);
  EXPECT_IRIS_ERROR(kernels::lstm_cell_forward_table().get(kCuda)(gi, gi, ci, h, c, a),
                    "lstm_cell");
  const Tensor xb = rand16({2, 3, 4}, 28, DType::bf16).to(kCuda);
  EXPECT_IRIS_ERROR(
      batch_norm(xb, Tensor(), Tensor(), ones({3}, DType::f64, kCuda), Tensor(), true),
      "batch_norm: weight");
}

}  // namespace
}  // namespace iris
