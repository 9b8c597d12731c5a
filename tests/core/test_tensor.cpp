#include <cmath>
#include <cstring>

#include "core/allocator.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::all_close;

TEST(Tensor, EmptyHasContiguousStrides) {
  Tensor t = Tensor::empty({2, 3, 4});
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.device().is_cpu());
}

TEST(Tensor, FromVectorRoundTrips) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_IRIS_ERROR(Tensor::from_vector<float>({1, 2}, {3}), "from_vector");
}

TEST(Views, PermuteTransposeShareStorage) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = t.t();
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_EQ(tt.storage(), t.storage());
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(tt.contiguous().to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Views, ViewReshapeAndInference) {
  Tensor t = arange(24, DType::f32).view({2, 3, 4});
  EXPECT_EQ(t.view({6, -1}).shape(), (Shape{6, 4}));
  EXPECT_EQ(t.reshape({-1}).shape(), (Shape{24}));
  // A transposed tensor cannot be viewed flat, but it can be reshaped (copy).
  EXPECT_IRIS_ERROR(t.transpose(1, 2).view({24}), "view");
  Tensor r = t.transpose(1, 2).reshape({24});
  EXPECT_EQ(r.to_vector<float>()[1], 4.0f);
  EXPECT_IRIS_ERROR(t.view({5, -1}), "invalid for 24");
  // Splitting one dim of a strided view is possible without a copy.
  Tensor s = t.transpose(0, 1);  // [3, 2, 4]
  EXPECT_EQ(s.view({3, 2, 2, 2}).storage(), t.storage());
}

TEST(Views, SliceNarrowSelectExpandSqueeze) {
  Tensor t = arange(12, DType::f32).view({3, 4});
  EXPECT_EQ(t.slice(1, 1, 4, 2).to_vector<float>(), (std::vector<float>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(t.narrow(0, 1, 2).to_vector<float>()[0], 4.0f);
  EXPECT_EQ(t.select(1, -1).to_vector<float>(), (std::vector<float>{3, 7, 11}));
  Tensor c = t.select(1, 0).unsqueeze(1).expand({3, 5});
  EXPECT_EQ(c.stride(1), 0);
  EXPECT_EQ(c.to_vector<float>()[6], 4.0f);
  EXPECT_EQ(t.unsqueeze(0).squeeze(0).shape(), (Shape{3, 4}));
  EXPECT_EQ(t.flatten().shape(), (Shape{12}));
  EXPECT_IRIS_ERROR(t.expand({3, 5}), "expand");
  EXPECT_IRIS_ERROR(t.narrow(0, 2, 2), "narrow");
  EXPECT_IRIS_ERROR(t.select(2, 0), "dim 2 out of range");
}

TEST(DType, BFloat16RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))),
            1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_float(float_to_bf16(-2.5f)), -2.5f);
}

TEST(DType, Float16ConversionMatchesIeee) {
  EXPECT_EQ(f16_to_float(float_to_f16(1.0f)), 1.0f);
  EXPECT_EQ(float_to_f16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f).bits, 0x7c00);  // rounds up to inf
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie to even -> 0
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)).bits, 0x0002);  // 1.5 ulp -> 2
  EXPECT_EQ(f16_to_float(f16{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);  // tie -> even
  EXPECT_EQ(float_to_f16(-0.0f).bits, 0x8000);
  // Every finite half round-trips exactly.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const f16 h{static_cast<uint16_t>(b)};
    if (((b >> 10) & 0x1f) == 0x1f) continue;
    ASSERT_EQ(float_to_f16(f16_to_float(h)).bits, h.bits) << b;
  }
}

TEST(DType, ConversionsThroughTensors) {
  Tensor t = Tensor::from_vector<float>({1.5f, -2.0f, 0.0f, 3.25f}, {4});
  EXPECT_EQ(t.to(DType::bf16).to(DType::f32).to_vector<float>(), t.to_vector<float>());
  EXPECT_EQ(t.to(DType::f16).to(DType::f64).to_vector<double>(),
            (std::vector<double>{1.5, -2.0, 0.0, 3.25}));
  EXPECT_EQ(t.to(DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 0, 3}));
  EXPECT_EQ(t.to(DType::b8).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 1}));
}

TEST(Philox, MatchesTheReferenceVectors) {
  // Known-answer test of Random123's philox4x32-10: key = 0, counter = 0.
  philox::U32x4 r = philox::block(0, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

TEST(Philox, DrawsDependOnlyOnSeedAndOffset) {
  Generator a(7), b(7);
  Tensor x = randn({1000}, DType::f32, Device::cpu(), &a);
  set_num_threads(1);
  Tensor y = randn({1000}, DType::f32, Device::cpu(), &b);
  set_num_threads(2);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  // The second draw continues the stream instead of repeating it.
  Tensor z = randn({1000}, DType::f32, Device::cpu(), &a);
  EXPECT_NE(x.to_vector<float>(), z.to_vector<float>());
  const std::vector<double> v = randn({200000}, DType::f64, Device::cpu(), &a).to_vector<double>();
  double m = 0, s = 0;
  for (double e : v) m += e, s += e * e;
  m /= v.size();
  s = s / v.size() - m * m;
  EXPECT_NEAR(m, 0.0, 0.01);
  EXPECT_NEAR(s, 1.0, 0.02);
}

TEST(ThreadPool, CoversTheRangeOnceAndPropagatesErrors) {
  set_num_threads(2);
  std::vector<int> hits(100000, 0);
  parallel_for(0, 100000, 100, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ++hits[i];
  });
  for (int h : hits) ASSERT_EQ(h, 1);
  EXPECT_IRIS_ERROR(parallel_for(0, 1000, 1, [](int64_t b, int64_t) {
                      if (b > 0) IRIS_FAIL("boom in chunk");
                    }),
                    "boom");
  EXPECT_GE(num_threads(), 1);
}

TEST(Allocator, ReusesBlocksAndTracksPeak) {
  Allocator& a = allocator_for(DeviceType::CPU);
  a.reset_peak(0);
  const int64_t before = a.stats(0).allocated;
  void* p;
  {
    Tensor t = Tensor::empty({1 << 20});
    p = t.raw_data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    EXPECT_GE(a.stats(0).allocated - before, 4 << 20);
  }
  EXPECT_EQ(a.stats(0).allocated, before);
  EXPECT_GE(a.stats(0).peak_allocated - before, 4 << 20);
  Tensor again = Tensor::empty({1 << 20});
  EXPECT_EQ(again.raw_data(), p);  // the cached block comes back
}

TEST(Errors, CudaWithoutADeviceIsAnError) {
  // Built without CUDA there is no backend; built with it, this machine may have no GPU.
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_IRIS_ERROR(Tensor::empty({2}, DType::f32, Device::cuda(0)), "cuda");
  EXPECT_IRIS_ERROR(parse_device("gpu"), "unknown device");
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
}

}  // namespace
}  // namespace iris
