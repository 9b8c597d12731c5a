// The CUDA runtime layer answers without a GPU and without the toolkit.
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

TEST(CudaRuntime, DeviceCountNeverThrows) {
  const int n = cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_IRIS_ERROR(cuda::device_description(n), "no device");
  if (n == 0) GTEST_SKIP() << "no GPU on this machine";
  EXPECT_FALSE(cuda::device_description(0).empty());
}

}  // namespace
}  // namespace iris
