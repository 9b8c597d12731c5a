// Backend comparison for embedding and dropout on the CUDA device (emulated in CI,
// real under `ctest -L cuda`) against the CPU: embedding forward and backward
// (repeated ids, padding_idx, int32/int64 ids), dropout masks bit for bit.
#include "autograd/nn_ops.h"
#include "kernels/dropout.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

Tensor ids_tensor(const std::vector<int64_t>& v, const Shape& shape, DType dt) {
  return Tensor::from_vector(v, shape).to(dt);
}

TEST(BackendEmbedding, ForwardAndBackwardMatchCpu) {
  IRIS_REQUIRE_CUDA();
  const int64_t V = 11, D = 37;  // D not a multiple of the 32-wide column tiles
  // Repeated ids (3 four times, 0 twice) and the padding row (5) among them.
  const std::vector<int64_t> ids = {3, 0, 5, 3, 10, 3, 7, 0, 3, 5, 1, 9, 2, 8, 4, 6, 10};
  for (DType wdt : {DType::f32, DType::f64}) {
    for (DType idt : {DType::i64, DType::i32}) {
      for (std::optional<int64_t> pad : {std::optional<int64_t>{}, std::optional<int64_t>{5}}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(wdt) << " ids " << dtype_name(idt)
                                          << (pad ? " padding 5" : ""));
        const Tensor w0 = randn_seeded({V, D}, 1, wdt);
        const Tensor id = ids_tensor(ids, {1, 17}, idt);
        Tensor wc = w0.detach().set_requires_grad(true);
        Tensor wg = w0.to(kCuda).detach().set_requires_grad(true);
        Tensor yc = embedding(wc, id, pad), yg = embedding(wg, id.to(kCuda), pad);
        EXPECT_EQ(yg.shape(), (Shape{1, 17, D}));
        EXPECT_CLOSE(yg.to(Device::cpu()), yc, 0, 0) << "forward";
        const Tensor dy = randn_seeded({1, 17, D}, 2, wdt);
        yc.backward(dy);
        yg.backward(dy.to(kCuda));
        // Same summation order as the CPU: bit-identical.
        EXPECT_CLOSE(wg.grad().to(Device::cpu()), wc.grad(), 0, 0) << "backward";
        if (pad) {
          const std::vector<double> row = wg.grad().to(DType::f64).slice(0, 5, 6).to_vector<double>();
          for (double r : row) EXPECT_EQ(r, 0.0);
        }
      }
    }
  }
}

TEST(BackendEmbedding, ManyRowsAndLargeDim) {
  IRIS_REQUIRE_CUDA();
  const int64_t V = 1000, D = 70, n = 300;
  std::vector<int64_t> ids(n);
  for (int64_t k = 0; k < n; ++k) ids[k] = (k * 37 + k / 7) % V;
  const Tensor id = Tensor::from_vector(ids, {n});
  const Tensor w0 = randn_seeded({V, D}, 3, DType::f32);
  Tensor wc = w0.detach().set_requires_grad(true);
  Tensor wg = w0.to(kCuda).detach().set_requires_grad(true);
  Tensor yc = embedding(wc, id), yg = embedding(wg, id.to(kCuda));
  EXPECT_CLOSE(yg.to(Device::cpu()), yc, 0, 0);
  const Tensor dy = randn_seeded({n, D}, 4, DType::f32);
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  EXPECT_CLOSE(wg.grad().to(Device::cpu()), wc.grad(), 0, 0);
}

TEST(BackendEmbedding, OutOfRangeIdIsAnError) {
  IRIS_REQUIRE_CUDA();
  const Tensor w = randn_seeded({4, 3}, 5, DType::f32).to(kCuda);
  const Tensor id = Tensor::from_vector<int64_t>({1, 2, 9, 0, -1}, {5}).to(kCuda);
  EXPECT_IRIS_ERROR(embedding(w, id), "index 9 (at position 2) is out of range for a weight of 4");
  const Tensor id32 = Tensor::from_vector<int64_t>({0, -3}, {2}).to(DType::i32).to(kCuda);
  EXPECT_IRIS_ERROR(embedding(w, id32), "index -3 (at position 1)");
}

// dropout_apply directly: the mask of kernels/dropout.h, bit for bit, for odd offsets
// (not on a Philox block boundary), odd sizes and several p.
TEST(BackendDropout, MaskIsBitIdenticalToCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({1001}, 6, dt);
    const Tensor xg = x.to(kCuda);
    for (double p : {0.0, 0.1, 0.5, 0.9, 1.0}) {
      for (uint64_t offset : {uint64_t{0}, uint64_t{3}, uint64_t{4}, uint64_t{1} << 33}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " p=" << p << " offset=" << offset);
        Tensor oc = Tensor::empty(x.shape(), dt), og = Tensor::empty(x.shape(), dt, kCuda);
        kernels::dropout_apply_table().get(Device::cpu())(x, p, 1234, offset, oc);
        kernels::dropout_apply_table().get(kCuda)(xg, p, 1234, offset, og);
        EXPECT_CLOSE(og.to(Device::cpu()), oc, 0, 0);
      }
    }
  }
}

TEST(BackendDropout, InPlaceAndAutogradMatchCpu) {
  IRIS_REQUIRE_CUDA();
  // out aliasing x
  const Tensor x = randn_seeded({7, 13}, 7, DType::f32);
  Tensor oc = Tensor::empty(x.shape(), DType::f32);
  kernels::dropout_apply_table().get(Device::cpu())(x, 0.3, 9, 5, oc);
  Tensor xg = x.to(kCuda);
  kernels::dropout_apply_table().get(kCuda)(xg, 0.3, 9, 5, xg);
  EXPECT_CLOSE(xg.to(Device::cpu()), oc, 0, 0);
  // through the op: the same generator state gives the same mask on both devices
  Generator g1(42), g2(42);
  Tensor xc = x.detach().set_requires_grad(true);
  Tensor xd = x.to(kCuda).detach().set_requires_grad(true);
  Tensor yc = dropout(xc, 0.4, true, &g1), yd = dropout(xd, 0.4, true, &g2);
  EXPECT_CLOSE(yd.to(Device::cpu()), yc, 0, 0);
  const Tensor dy = randn_seeded({7, 13}, 8, DType::f32);
  yc.backward(dy);
  yd.backward(dy.to(kCuda));
  EXPECT_CLOSE(xd.grad().to(Device::cpu()), xc.grad(), 0, 0);
}

}  // namespace
}  // namespace iris
