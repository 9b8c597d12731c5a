#include "autograd/linalg.h"
#include "tests/support/parity.h"

namespace iris::testing {
namespace {

TEST(ParityLinalg, Matmul) {
  for (const ParityCase* c : parity_cases("linalg", "matmul_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{matmul(c.in("a"), c.in("b"))};
    });
  for (const ParityCase* c : parity_cases("linalg", "bmm"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{bmm(c.in("a"), c.in("b"))};
    });
}

TEST(ParityLinalg, Linear) {
  for (const ParityCase* c : parity_cases("linalg", "linear_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{
          linear(c.in("x"), c.in("w"), c.has_in("b") ? c.in("b") : Tensor())};
    });
}

}  // namespace
}  // namespace iris::testing
