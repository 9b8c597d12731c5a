// matmul / bmm / linear: forward against loops, gradcheck, errors.
#include "autograd/linalg.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

// Naive [.., M, K] @ [.., K, N] over equal batch sizes (already broadcast, contiguous).
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const int64_t B = a.numel() / (M * K);
  const auto av = a.contiguous().to_vector<double>(), bv = b.contiguous().to_vector<double>();
  std::vector<double> o(B * M * N, 0);
  for (int64_t z = 0; z < B; ++z)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(z * M + i) * K + k] * bv[(z * K + k) * N + j];
        o[(z * M + i) * N + j] = s;
      }
  Shape s = a.shape();
  s.back() = N;
  return Tensor::from_vector(o, s);
}

TEST(Linalg, MatmulShapesAndValues) {
  Tensor a = randn_seeded({5, 7}, 1), b = randn_seeded({7, 3}, 2);
  EXPECT_CLOSE(matmul(a, b), naive_matmul(a, b), 1e-12, 1e-12);
  // transposed operands go to the GEMM as views
  Tensor at = randn_seeded({7, 5}, 3).t(), bt = randn_seeded({3, 7}, 4).t();
  EXPECT_CLOSE(matmul(at, bt), naive_matmul(at.contiguous(), bt.contiguous()), 1e-12, 1e-12);
  // batch broadcast: [2, 1, 4, 6] @ [3, 6, 5] -> [2, 3, 4, 5]
  Tensor x = randn_seeded({2, 1, 4, 6}, 5), y = randn_seeded({3, 6, 5}, 6);
  Tensor out = matmul(x, y);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 4, 5}));
  EXPECT_CLOSE(out, naive_matmul(x.expand({2, 3, 4, 6}).contiguous(),
                                 y.expand({2, 3, 6, 5}).contiguous()),
               1e-12, 1e-12);
  // 1-D cases
  Tensor v = randn_seeded({7}, 7);
  EXPECT_EQ(matmul(a, v).shape(), (Shape{5}));
  EXPECT_EQ(matmul(v, b).shape(), (Shape{3}));
  EXPECT_EQ(matmul(v, v).dim(), 0);
  EXPECT_CLOSE(matmul(a, v), naive_matmul(a, v.unsqueeze(1)).squeeze(1), 1e-12, 1e-12);
  // batched left operand, 2-D right operand (folded into one GEMM)
  Tensor xb = randn_seeded({3, 4, 7}, 8);
  EXPECT_CLOSE(matmul(xb, b), naive_matmul(xb, b.expand({3, 7, 3}).contiguous()), 1e-12, 1e-12);
  EXPECT_CLOSE(matmul(xb.transpose(0, 1), b),
               naive_matmul(xb.transpose(0, 1).contiguous(), b.expand({4, 7, 3}).contiguous()),
               1e-12, 1e-12);
  // float32 through the fast path
  Tensor af = randn_seeded({33, 65}, 9, DType::f32), bf = randn_seeded({65, 17}, 10, DType::f32);
  EXPECT_CLOSE(matmul(af, bf), naive_matmul(af.to(DType::f64), bf.to(DType::f64)), 1e-4, 1e-4);
}

TEST(Linalg, Errors) {
  EXPECT_IRIS_ERROR(matmul(randn_seeded({2, 3}, 1), randn_seeded({4, 2}, 1)), "inner dims");
  EXPECT_IRIS_ERROR(matmul(randn_seeded({2, 3}, 1), randn_seeded({3, 2}, 1, DType::f32)),
                    "dtype mismatch");
  EXPECT_IRIS_ERROR(bmm(randn_seeded({2, 3, 4}, 1), randn_seeded({3, 4, 2}, 1)), "bmm");
  EXPECT_IRIS_ERROR(linear(randn_seeded({2, 3}, 1), randn_seeded({4, 5}, 1)), "linear");
  EXPECT_IRIS_ERROR(linear(randn_seeded({2, 3}, 1), randn_seeded({4, 3}, 1), randn_seeded({5}, 1)),
                    "bias");
  EXPECT_IRIS_ERROR(matmul(arange(3), arange(3)), "floating");
}

TEST(Linalg, LinearMatchesMatmulPlusBias) {
  Tensor x = randn_seeded({2, 5, 7}, 11), w = randn_seeded({4, 7}, 12), b = randn_seeded({4}, 13);
  EXPECT_CLOSE(linear(x, w, b), add(matmul(x, w.t()), b), 1e-12, 1e-12);
  EXPECT_CLOSE(linear(x, w), matmul(x, w.t()), 1e-12, 1e-12);
  EXPECT_CLOSE(linear(x.transpose(0, 1), w, b), add(matmul(x.transpose(0, 1), w.t()), b), 1e-12,
               1e-12);
}

TEST(Linalg, Gradchecks) {
  auto one = [](const Tensor& t) { return std::vector<Tensor>{t}; };
  Tensor a = param({3, 4}, 20), b = param({4, 5}, 21);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(matmul(in[0], in[1])); },
                   {a, b});
  Tensor x = param({2, 1, 3, 4}, 22), y = param({3, 4, 2}, 23);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(matmul(in[0], in[1])); },
                   {x, y});
  Tensor xb = param({2, 3, 4}, 24);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(matmul(in[0], in[1])); },
                   {xb, b});
  Tensor v = param({4}, 25);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(matmul(in[0], in[1])); },
                   {a, v});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(matmul(in[0], in[1])); },
                   {v, b});
  Tensor p = param({3, 4, 2}, 26), q = param({3, 2, 5}, 27);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(bmm(in[0], in[1])); }, {p, q});
  Tensor w = param({5, 4}, 28), bias = param({5}, 29);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return one(linear(in[0], in[1], in[2])); },
      {xb, w, bias});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(linear(in[0], in[1])); },
                   {xb.transpose(0, 1).contiguous().detach().set_requires_grad(true), w});
}

}  // namespace
}  // namespace iris
