#include "tests/support/testing.h"

#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace iris::testing {

Tensor randn_seeded(const Shape& shape, uint64_t seed, DType dtype) {
  Generator g(seed);
  return randn(shape, dtype == DType::f64 ? DType::f64 : DType::f32, Device::cpu(), &g).to(dtype);
}

Tensor param(const Shape& shape, uint64_t seed) {
  Tensor t = randn_seeded(shape, seed, DType::f64);
  t.set_requires_grad(true);
  return t;
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor: " << actual.desc() << " vs "
                                         << expected.desc();
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " vs "
                                         << shape_str(expected.shape());
  const std::vector<double> a = actual.to_vector<double>();
  const std::vector<double> e = expected.to_vector<double>();
  double worst = 0;
  int64_t worst_i = -1, bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(e[i])) continue;
    const double err = std::abs(a[i] - e[i]);
    const double tol = atol + rtol * std::abs(e[i]);
    if (!(err <= tol)) {
      ++bad;
      if (worst_i < 0 || err / tol > worst) worst = err / tol, worst_i = static_cast<int64_t>(i);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << a.size() << " elements differ; worst at flat index " << worst_i
         << ": " << a[worst_i] << " vs expected " << e[worst_i] << " (" << worst
         << "x tolerance, rtol " << rtol << ", atol " << atol << ")";
}

::testing::AssertionResult grad_ok(const GradcheckResult& r) {
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.message;
}

::testing::AssertionResult throws_iris_error(const std::function<void()>& stmt,
                                             const std::string& needle) {
  try {
    stmt();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "iris::Error without '" << needle << "': " << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "a non-iris exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception (expected one naming '" << needle << "')";
}

bool cuda_usable() {
  try {
    (void)Tensor::empty({1}, DType::f32, kCuda);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string torch_python() { return IRIS_TORCH_PYTHON; }
std::string source_dir() { return IRIS_SOURCE_DIR; }

int run_python(const std::string& script, const std::vector<std::string>& args) {
  std::ostringstream cmd;
  cmd << "'" << torch_python() << "' '" << script << "'";
  for (const std::string& a : args) cmd << " '" << a << "'";
  const int rc = std::system(cmd.str().c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  IRIS_CHECK(mkdtemp(tmpl.data()) != nullptr,
             "cannot create a temporary folder ", tmpl, ": ", std::strerror(errno));
  return tmpl;
}

}  // namespace iris::testing
