// embedding (gather, deterministic scatter-add backward, padding_idx) and
// dropout (the Philox element rule, statistics, determinism, identity cases)
// against plain references, float64 gradchecks, and argument errors.
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

// ---- embedding ----

std::vector<double> gather_ref(const std::vector<double>& w, const std::vector<int64_t>& ids,
                               int64_t D) {
  std::vector<double> out;
  for (int64_t id : ids)
    for (int64_t j = 0; j < D; ++j) out.push_back(w[id * D + j]);
  return out;
}

std::vector<double> scatter_ref(const std::vector<double>& dout, const std::vector<int64_t>& ids,
                                int64_t V, int64_t D, int64_t pad) {
  std::vector<double> dw(V * D, 0.0);
  for (size_t k = 0; k < ids.size(); ++k)
    if (ids[k] != pad)
      for (int64_t j = 0; j < D; ++j) dw[ids[k] * D + j] += dout[k * D + j];
  return dw;
}

TEST(Embedding, GatherAndScatterWithRepeatedIdsInt64AndInt32) {
  const int64_t V = 9, D = 13;
  const std::vector<int64_t> idv = {3, 0, 8, 3, 3, 5, 0, 1, 8, 3, 7, 2, 3, 6, 0};
  for (DType id_dt : {DType::i64, DType::i32})
    for (DType dt : {DType::f32, DType::f64}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(id_dt) << " " << dtype_name(dt));
      const Tensor ids = Tensor::from_vector(idv, {3, 5}).to(id_dt);
      Tensor w = randn_seeded({V, D}, 1, dt).set_requires_grad(true);
      const Tensor y = embedding(w, ids);
      EXPECT_EQ(y.shape(), (Shape{3, 5, D}));
      EXPECT_CLOSE(y, Tensor::from_vector(gather_ref(w.to_vector<double>(), idv, D), {3, 5, D}), 0,
                   0);
      const Tensor dy = randn_seeded({3, 5, D}, 2, dt);
      y.backward(dy);
      EXPECT_CLOSE(w.grad(),
                   Tensor::from_vector(scatter_ref(dy.to_vector<double>(), idv, V, D, -1), {V, D}),
                   dt == DType::f32 ? 1e-6 : 1e-15, 1e-6);
    }
}

TEST(Embedding, PaddingIdxGetsNoGradientAndWrapsNegative) {
  const int64_t V = 6, D = 4;
  const std::vector<int64_t> idv = {1, 5, 2, 5, 0, 1, 5};
  const Tensor ids = Tensor::from_vector(idv, {7});
  const Tensor dy = randn_seeded({7, D}, 3);
  for (int64_t pad : {int64_t{1}, int64_t{-1}}) {
    Tensor w = randn_seeded({V, D}, 4).set_requires_grad(true);
    const Tensor y = embedding(w, ids, pad);
    // The forward still returns the padding row itself, as PyTorch.
    EXPECT_CLOSE(y, Tensor::from_vector(gather_ref(w.to_vector<double>(), idv, D), {7, D}), 0, 0);
    y.backward(dy);
    const int64_t wrapped = pad < 0 ? pad + V : pad;
    EXPECT_CLOSE(
        w.grad(),
        Tensor::from_vector(scatter_ref(dy.to_vector<double>(), idv, V, D, wrapped), {V, D}), 1e-15,
        0);
  }
}

TEST(Embedding, StridedWeightAndIds) {
  const Tensor wt = randn_seeded({5, 8}, 5, DType::f32);  // weight = wt.t(): [8, 5]
  const Tensor ids = Tensor::from_vector<int64_t>({7, 0, 3, 3, 1, 6}, {2, 3}).t();
  const Tensor y = embedding(wt.t(), ids);
  const std::vector<int64_t> idv = ids.to_vector<int64_t>();
  EXPECT_CLOSE(y, Tensor::from_vector(gather_ref(wt.t().to_vector<double>(), idv, 5), {3, 2, 5}), 0,
               0);
}

TEST(Embedding, ExpandedUpstreamGradient) {
  const std::vector<int64_t> idv = {2, 0, 2};
  Tensor w = randn_seeded({3, 4}, 8).set_requires_grad(true);
  const Tensor g_row = randn_seeded({4}, 9);
  embedding(w, Tensor::from_vector(idv, {3})).backward(g_row.expand({3, 4}));
  EXPECT_CLOSE(w.grad(),
               Tensor::from_vector(
                   scatter_ref(g_row.expand({3, 4}).to_vector<double>(), idv, 3, 4, -1), {3, 4}),
               1e-15, 0);
}

TEST(Embedding, BackwardBitsDoNotDependOnThreadCount) {
  const int64_t V = 50, D = 96, n = 4000;
  std::vector<int64_t> idv(n);
  for (int64_t k = 0; k < n; ++k) idv[k] = (k * k + 3 * k) % 7 == 0 ? 4 : (k * 31) % V;
  const Tensor ids = Tensor::from_vector(idv, {n});
  const Tensor dy = randn_seeded({n, D}, 6, DType::f32);
  auto grad = [&](int threads) {
    set_num_threads(threads);
    Tensor w = zeros({V, D}).set_requires_grad(true);
    embedding(w, ids).backward(dy);
    return w.grad().to_vector<float>();
  };
  const int before = num_threads();
  const std::vector<float> one = grad(1), three = grad(3);
  set_num_threads(before);
  EXPECT_EQ(one, three);
}

TEST(Embedding, GradcheckWithAndWithoutPadding) {
  const Tensor ids = Tensor::from_vector<int64_t>({2, 0, 2, 3, 2, 1}, {2, 3});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{embedding(in[0], ids)}; },
      {param({4, 3}, 7)});
  // padding_idx declares the padding row's gradient zero although the forward reads it; the
  // outputs that read it are masked off so finite differences agree with that convention.
  const Tensor keep = ne(ids, Tensor::scalar(2, DType::i64)).to(DType::f64).unsqueeze(-1);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{mul(embedding(in[0], ids, 2), keep)};
      },
      {param({4, 3}, 7)});
}

TEST(Embedding, BadArgumentsNameTheOp) {
  const Tensor w = randn_seeded({5, 3}, 1, DType::f32);
  EXPECT_IRIS_ERROR(embedding(w, Tensor::from_vector<int64_t>({0, 5}, {2})),
                    "embedding: index 5 (at position 1) is out of range for a weight of 5 rows");
  EXPECT_IRIS_ERROR(embedding(w, Tensor::from_vector<int32_t>({-1}, {1})), "embedding: index -1");
  EXPECT_IRIS_ERROR(embedding(w, arange(2), 5), "embedding: padding_idx 5");
  EXPECT_IRIS_ERROR(embedding(w, arange(2), -6), "embedding: padding_idx -6");
  EXPECT_IRIS_ERROR(embedding(w, ones({2})), "embedding: ids must be int64 or int32");
  EXPECT_IRIS_ERROR(embedding(ones({5}), arange(2)), "embedding: weight must be");
}

// ---- dropout ----

// The contract of kernels/dropout.h, written out element by element.
std::vector<double> dropout_ref(const std::vector<double>& x, double p, uint64_t seed,
                                uint64_t offset, double scale) {
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    out[i] = philox::uniform(seed, offset + i) >= p ? x[i] * scale : 0.0;
  return out;
}

TEST(Dropout, FollowsThePhiloxElementRule) {
  for (DType dt : {DType::f32, DType::f64})
    for (double p : {0.1, 0.5, 0.9}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " p " << p);
      Generator gen(1234);
      gen.reserve(6);  // an offset that is not a multiple of the chunking
      const uint64_t offset = gen.offset();
      Tensor x = randn_seeded({37, 29}, 1, dt).set_requires_grad(true);
      const Tensor y = dropout(x, p, true, &gen);
      EXPECT_EQ(gen.offset(), offset + (37 * 29 + 3) / 4 * 4);
      // The scale as the kernel applies it: 1 / (1 - p) rounded to the dtype.
      const double scale = dt == DType::f32 ? static_cast<float>(1 / (1 - p)) : 1 / (1 - p);
      const std::vector<double> expect = dropout_ref(x.to_vector<double>(), p, 1234, offset, scale);
      EXPECT_CLOSE(y, Tensor::from_vector(expect, {37, 29}), dt == DType::f32 ? 1e-7 : 0, 0);
      // Backward: the same mask and scale on the upstream gradient.
      const Tensor dy = randn_seeded({37, 29}, 2, dt);
      y.backward(dy);
      EXPECT_CLOSE(x.grad(),
                   Tensor::from_vector(dropout_ref(dy.to_vector<double>(), p, 1234, offset, scale),
                                       {37, 29}),
                   dt == DType::f32 ? 1e-7 : 0, 0);
    }
}

TEST(Dropout, KeepRateAndMeanMatchExpectation) {
  const int64_t n = 200000;
  const Tensor x = ones({n});
  for (double p : {0.1, 0.5, 0.8}) {
    Generator gen(99);
    const std::vector<float> y = dropout(x, p, true, &gen).to_vector<float>();
    int64_t kept = 0;
    for (float v : y) kept += v != 0;
    const double rate = static_cast<double>(kept) / n;
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(rate, 1 - p, 5 * sigma) << "p " << p;
    double mean = 0;
    for (float v : y) mean += v;
    EXPECT_NEAR(mean / n, 1.0, 5 * sigma / (1 - p)) << "p " << p;
  }
}

TEST(Dropout, DeterministicForASeedAndFreshPerCall) {
  const Tensor x = randn_seeded({1000}, 3, DType::f32);
  Generator a(7), b(7);
  const std::vector<float> ya = dropout(x, 0.3, true, &a).to_vector<float>();
  EXPECT_EQ(ya, dropout(x, 0.3, true, &b).to_vector<float>());
  EXPECT_NE(ya, dropout(x, 0.3, true, &a).to_vector<float>());  // the next offsets
  // The default generator is used when none is given, and reseeding repeats the draw.
  manual_seed(5);
  const std::vector<float> d1 = dropout(x, 0.3).to_vector<float>();
  manual_seed(5);
  EXPECT_EQ(d1, dropout(x, 0.3).to_vector<float>());
}

TEST(Dropout, StridedInputUsesLogicalElementOrder) {
  const Tensor base = randn_seeded({6, 9}, 4, DType::f32);
  Generator a(11), b(11);
  EXPECT_CLOSE(dropout(base.t(), 0.4, true, &a), dropout(base.t().contiguous(), 0.4, true, &b), 0,
               0);
}

TEST(Dropout, IdentityAndAllDropped) {
  const Tensor x = randn_seeded({4, 5}, 5).set_requires_grad(true);
  EXPECT_TRUE(dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true).is_same(x));
  Generator gen(1);
  const Tensor y = dropout(x, 1.0, true, &gen);
  EXPECT_CLOSE(y, zeros({4, 5}, DType::f64), 0, 0);
  y.backward(ones({4, 5}, DType::f64));
  EXPECT_CLOSE(x.grad(), zeros({4, 5}, DType::f64), 0, 0);
}

TEST(Dropout, Gradcheck) {
  for (double p : {0.2, 0.6}) {
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          Generator gen(31);  // the same mask on every evaluation
          return std::vector<Tensor>{dropout(in[0], p, true, &gen)};
        },
        {param({5, 7}, 8)});
  }
}

TEST(Dropout, BadProbabilityNamesTheOp) {
  const Tensor x = ones({3});
  EXPECT_IRIS_ERROR(dropout(x, -0.1),
                    "dropout: probability has to be between 0 and 1, but got -0.1");
  EXPECT_IRIS_ERROR(dropout(x, 1.5, false), "dropout: probability");
  EXPECT_IRIS_ERROR(dropout(arange(3), 0.5), "dropout");
}

}  // namespace
}  // namespace iris
