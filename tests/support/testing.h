#pragma once
// Shared test helpers: random tensors, closeness with a useful message,
// gradcheck as an assertion, iris::Error expectations, the torch interpreter.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace iris::testing {

// Standard-normal tensor from a fixed seed.
Tensor randn_seeded(const Shape& shape, uint64_t seed, DType dtype = DType::f64);
// Leaf float64 tensor requiring grad.
Tensor param(const Shape& shape, uint64_t seed);

// |a - e| <= atol + rtol * |e| elementwise (shapes must match; NaN matches NaN).
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol);
::testing::AssertionResult grad_ok(const GradcheckResult& r);

// Runs stmt, expects an iris::Error whose message contains `needle`.
::testing::AssertionResult throws_iris_error(const std::function<void()>& stmt,
                                             const std::string& needle);

// The CUDA device of this binary: the emulator's (tests/cuda/*_emu) or a real GPU.
inline const Device kCuda = Device::cuda(0);
// True when a tensor can be made on kCuda (a backend is linked and a device found).
bool cuda_usable();

// A new empty folder /tmp/PREFIX-XXXXXX, unique to this call (ctest runs the cases of one
// suite as separate processes at once, so a fixed name would be shared); throws on failure.
std::string make_temp_dir(const std::string& prefix);

// The python interpreter that imports torch (configured by CMake), and the source dir.
std::string torch_python();
std::string source_dir();
// Runs `python script args...`; returns its exit code.
int run_python(const std::string& script, const std::vector<std::string>& args);

}  // namespace iris::testing

#define EXPECT_CLOSE(actual, expected, rtol, atol) \
  EXPECT_TRUE(::iris::testing::all_close((actual), (expected), (rtol), (atol)))
#define EXPECT_GRADCHECK(...) EXPECT_TRUE(::iris::testing::grad_ok(::iris::gradcheck(__VA_ARGS__)))
#define IRIS_REQUIRE_CUDA()            \
  if (!::iris::testing::cuda_usable()) \
  GTEST_SKIP() << "no CUDA device (real or emulated) in this binary"
#define EXPECT_IRIS_ERROR(stmt, needle) \
  EXPECT_TRUE(::iris::testing::throws_iris_error([&] { stmt; }, (needle)))
