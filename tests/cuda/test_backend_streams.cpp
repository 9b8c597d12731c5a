// Streams, events and asynchronous copies on the CUDA device (emulated in CI, real under
// `ctest -L cuda`). On the emulator a created stream's work runs only when the host waits
// for it, so the checks marked "emulator" see what a missing synchronisation does; on a GPU
// the same program has a race with no defined outcome, and those checks are skipped.
#include <thread>
#include <vector>

#include "core/stream.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using cuda::Event;
using cuda::Stream;
using cuda::StreamGuard;
using testing::kCuda;

bool emulated() { return cuda::backend_name() == "cuda (emulated)"; }

// n values that no kernel below maps onto another of them by accident.
std::vector<float> ramp(int64_t n, float start) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + 0.25f * static_cast<float>(i % 997);
  return v;
}

TEST(BackendStreams, CurrentStreamIsPerThreadAndScoped) {
  IRIS_REQUIRE_CUDA();
  EXPECT_TRUE(Stream::current().is_default());
  const Stream s = Stream::create();
  EXPECT_FALSE(s.is_default());
  EXPECT_NE(s.id(), Stream::create().id());
  {
    StreamGuard g(s);
    EXPECT_EQ(Stream::current(), s);
    std::thread([] { EXPECT_TRUE(Stream::current().is_default()); }).join();
    {
      StreamGuard inner(Stream::default_stream());
      EXPECT_TRUE(Stream::current().is_default());
    }
    EXPECT_EQ(Stream::current(), s);
  }
  EXPECT_TRUE(Stream::current().is_default());
}

TEST(BackendStreams, OneStreamRunsInIssueOrder) {
  IRIS_REQUIRE_CUDA();
  const int64_t n = 1037;  // not a multiple of any block size
  std::vector<float> host = ramp(n, -100.0f);
  const std::vector<float> original = host;
  const Stream s = Stream::create();
  StreamGuard g(s);
  const Tensor x = Tensor::from_vector(host, {n}, kCuda);
  host.assign(n, -1e9f);  // the copy was staged: the caller's memory is free at once
  const Tensor y = mul(add(x, x), scalar_like(x, 3.0));
  const Tensor z = y.clone();  // a device-to-device copy on the same stream
  if (emulated()) {
    EXPECT_FALSE(s.query());  // queued: the copy, two kernels, the clone
  }
  const std::vector<float> got = z.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], (original[i] + original[i]) * 3.0f) << i;
  EXPECT_TRUE(s.query());
}

TEST(BackendStreams, AnEventOrdersTwoStreams) {
  IRIS_REQUIRE_CUDA();
  const int64_t n = 301;
  const std::vector<float> v = ramp(n, 1.0f);
  const Tensor x = Tensor::from_vector(v, {n}, kCuda);
  const Stream a = Stream::create(), b = Stream::create();
  Tensor y, z;
  Event produced;
  {
    StreamGuard g(a);
    y = mul(x, scalar_like(x, 2.0));
    produced.record();
  }
  std::vector<float> got;
  {
    StreamGuard g(b);
    b.wait(produced);
    z = add(y, scalar_like(y, 1.0));
    cuda::record_stream(y, b);
    got = z.to_vector<float>();  // waits for b only
  }
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], v[i] * 2.0f + 1.0f) << i;
}

TEST(BackendStreams, EmulatorShowsAMissingEventWait) {
  IRIS_REQUIRE_CUDA();
  if (!emulated()) GTEST_SKIP() << "on a GPU this race has no defined outcome";
  const int64_t n = 301;
  const std::vector<float> v = ramp(n, 1.0f);
  const Tensor x = Tensor::from_vector(v, {n}, kCuda);
  const Stream a = Stream::create(), b = Stream::create();
  Tensor y;
  {
    StreamGuard g(a);
    y = mul(x, scalar_like(x, 2.0));  // queued on a, not run
  }
  std::vector<float> stale;
  {
    StreamGuard g(b);
    stale = add(y, scalar_like(y, 1.0)).to_vector<float>();  // b never waited for a
  }
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) right += stale[i] == v[i] * 2.0f + 1.0f;
  EXPECT_EQ(right, 0);
  a.synchronize();
  StreamGuard g(b);
  EXPECT_EQ(add(y, scalar_like(y, 1.0)).to_vector<float>()[n - 1], v[n - 1] * 2.0f + 1.0f);
}

TEST(BackendStreams, EventsQuerySynchronizeAndTime) {
  IRIS_REQUIRE_CUDA();
  const Stream s = Stream::create();
  StreamGuard g(s);
  Tensor x = Tensor::from_vector(ramp(4099, 0.5f), {4099}, kCuda);
  Event start, middle, end;
  start.record();
  for (int i = 0; i < 4; ++i) x = add(x, x);
  middle.record(s);
  for (int i = 0; i < 4; ++i) x = mul(x, scalar_like(x, 0.5));
  end.record();
  middle.synchronize();
  EXPECT_TRUE(middle.query());
  EXPECT_TRUE(start.query());
  int polls = 0;  // polling alone must get there (the emulator runs work as it is polled)
  while (!end.query() && polls < 100000000) ++polls;
  EXPECT_TRUE(end.query());
  const float first = start.elapsed_ms(middle), whole = start.elapsed_ms(end);
  EXPECT_GE(first, 0.0f);
  EXPECT_GE(whole, first);
  EXPECT_EQ(x.to_vector<float>()[4098], 0.5f + 0.25f * (4098 % 997));  // x16 then /16: exact
}

TEST(BackendStreams, MisuseIsAnError) {
  IRIS_REQUIRE_CUDA();
  Event never;
  EXPECT_FALSE(never.recorded());
  EXPECT_IRIS_ERROR(never.synchronize(), "never recorded");
  EXPECT_IRIS_ERROR((void)never.query(), "never recorded");
  Event done;
  done.record(Stream::default_stream());
  EXPECT_IRIS_ERROR((void)done.elapsed_ms(never), "end event was never recorded");
  EXPECT_IRIS_ERROR((void)never.elapsed_ms(done), "start event was never recorded");
  EXPECT_IRIS_ERROR(Stream::create().wait(never), "never recorded");
  EXPECT_IRIS_ERROR((void)Stream::create(99), "no cuda device 99");
  EXPECT_IRIS_ERROR((void)Stream::create(15), "no cuda device 15");
  EXPECT_IRIS_ERROR(cuda::record_stream(Tensor::from_vector<float>({1.0f}, {1}), Stream::create()),
                    "a cuda tensor is needed");
  if (emulated()) {  // on a GPU the work may have finished already
    const Stream s = Stream::create();
    StreamGuard g(s);
    Tensor x = Tensor::from_vector(ramp(64, 1.0f), {64}, kCuda);
    Event start, end;
    start.record();
    for (int i = 0; i < 3; ++i) x = add(x, x);
    end.record();
    EXPECT_IRIS_ERROR((void)start.elapsed_ms(end), "have not completed");
  }
}

TEST(BackendStreams, PageableCopiesToTheDeviceAreStagedAndOrdered) {
  IRIS_REQUIRE_CUDA();
  const Stream s = Stream::create();
  StreamGuard g(s);
  // Many small copies (each its own staging buffer while queued) and one of 72 MiB: more
  // than the pinned pool holds, so its pieces must wait for earlier pieces' copies.
  std::vector<Tensor> small;
  std::vector<std::vector<float>> expected;
  std::vector<float> host;
  for (int i = 0; i < 40; ++i) {
    host = ramp(1000 + i, static_cast<float>(i));
    expected.push_back(host);
    small.push_back(Tensor::from_vector(host, {1000 + i}, kCuda));
  }
  const int64_t big_n = (int64_t(72) << 20) / 4 + 3;
  host = ramp(big_n, -7.0f);
  const Tensor big = Tensor::from_vector(host, {big_n}, kCuda);
  const std::vector<float> big_expected = host;
  host.assign(host.size(), 0.0f);
  for (int i = 0; i < 40; ++i) ASSERT_EQ(small[i].to_vector<float>(), expected[i]) << i;
  EXPECT_TRUE(big.to_vector<float>() == big_expected);
}

TEST(BackendStreams, HostValuesWaitForTheCurrentStream) {
  IRIS_REQUIRE_CUDA();
  const Stream s = Stream::create();
  StreamGuard g(s);
  const Tensor x = Tensor::from_vector<float>({1.5f, -2.25f, 8.0f}, {3}, kCuda);
  const Tensor y = mul(x, scalar_like(x, 4.0));
  EXPECT_EQ(y.select(0, 1).item(), -9.0);
  EXPECT_EQ(y.to(Device::cpu()).to_vector<float>(), (std::vector<float>{6.0f, -9.0f, 32.0f}));
  EXPECT_EQ(add(y, y).to_vector<float>()[2], 64.0f);
}

TEST(BackendStreams, FreedBlocksAreReusedOnlyOnTheirStream) {
  IRIS_REQUIRE_CUDA();
  const Stream a = Stream::create(), b = Stream::create();
  void* pa = nullptr;
  {
    StreamGuard g(a);
    pa = Tensor::empty({1000}, DType::f32, kCuda).raw_data();  // freed at once, on a
  }
  {
    StreamGuard g(b);
    EXPECT_NE(Tensor::empty({1000}, DType::f32, kCuda).raw_data(), pa);
  }
  StreamGuard g(a);
  EXPECT_EQ(Tensor::empty({1000}, DType::f32, kCuda).raw_data(), pa);
}

TEST(BackendStreams, RecordStreamHoldsABlockForTheOtherStream) {
  IRIS_REQUIRE_CUDA();
  const Stream a = Stream::create(), b = Stream::create();
  Tensor t;
  void* p = nullptr;
  {
    StreamGuard g(a);
    t = Tensor::from_vector(ramp(1000, 3.0f), {1000}, kCuda);
    p = t.raw_data();
  }
  Event ready;
  ready.record(a);
  Tensor sum;
  {
    StreamGuard g(b);
    b.wait(ready);
    sum = add(t, t);  // queued on b, reads t
    cuda::record_stream(t, b);
  }
  t = Tensor();  // freed on the host while b may still read it
  StreamGuard g(a);
  // a must not take t's block while b's read is queued, and gets it back once b is past it
  // (on a GPU, b may be past it at once: then either allocation may get it).
  const Tensor reuse = full({1000}, 0.0, DType::f32, kCuda);
  b.synchronize();
  const Tensor after = Tensor::empty({1000}, DType::f32, kCuda);
  if (emulated()) {
    EXPECT_NE(reuse.raw_data(), p);
    EXPECT_EQ(after.raw_data(), p);
  } else {
    EXPECT_TRUE(reuse.raw_data() == p || after.raw_data() == p);
  }
  StreamGuard gb(b);
  EXPECT_EQ(sum.to_vector<float>()[999], 2.0f * (3.0f + 0.25f * 2));
}

// What a kernel's scratch memory (cuBLASLt's workspace) relies on: a block taken on stream a,
// written and read by work queued on a, and freed by the host before that work has run, is not
// handed to stream b; a's next allocation, queued after that work, gets it.
TEST(BackendStreams, ScratchFreedWhileItsStreamRunsStaysWithThatStream) {
  IRIS_REQUIRE_CUDA();
  const int64_t n = 777;
  const Tensor x = Tensor::from_vector(ramp(n, -2.0f), {n}, kCuda);
  x.to_vector<float>();  // staged copy on the default stream done before a starts
  const Stream a = Stream::create(), b = Stream::create();
  Tensor result;
  void* p = nullptr;
  {
    StreamGuard g(a);
    Tensor scratch = add(x, x);  // written on a
    p = scratch.raw_data();
    result = mul(scratch, x);  // read on a
    if (emulated()) {
      EXPECT_FALSE(a.query());  // both kernels still queued when the scratch is freed
    }
  }
  {
    StreamGuard g(b);
    const Tensor other = full({n}, 7.0, DType::f32, kCuda);
    EXPECT_NE(other.raw_data(), p);
    EXPECT_EQ(other.to_vector<float>()[n - 1], 7.0f);
  }
  StreamGuard g(a);
  const Tensor again = Tensor::empty({n}, DType::f32, kCuda);
  EXPECT_EQ(again.raw_data(), p);
  const std::vector<float> got = result.to_vector<float>();
  const std::vector<float> v = ramp(n, -2.0f);
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(got[size_t(i)], (v[size_t(i)] + v[size_t(i)]) * v[size_t(i)]) << i;
}

}  // namespace
}  // namespace iris
