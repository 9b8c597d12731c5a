// Normalisation, softmax, cross-entropy and embedding against PyTorch (cases in
// tests/parity/cases_norm.py).
#include "autograd/nn_ops.h"
#include "tests/support/parity.h"

namespace iris::testing {
namespace {

TEST(ParityNorm, LayerNorm) {
  for (const ParityCase* c : parity_cases("norm", "layer_norm_affine_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{layer_norm(c.in("x"), {c.attr_int("d")}, c.in("w"), c.in("b"))};
    });
  for (const ParityCase* c : parity_cases("norm", "layer_norm_plain"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{
          layer_norm(c.in("x"), {4, 6}, Tensor(), Tensor(), c.attr_double("eps"))};
    });
  for (const ParityCase* c : parity_cases("norm", "layer_norm_large_mean"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{layer_norm(c.in("x"), {64}, c.in("w"), c.in("b"))};
    });
}

TEST(ParityNorm, BatchNorm) {
  int n = 0;
  for (const ParityCase* c : parity_cases("norm", "batch_norm_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      const Tensor rm = c.in("rm0").clone(), rv = c.in("rv0").clone();
      const Tensor y = batch_norm(c.in("x"), rm, rv, c.in("w"), c.in("b"), c.attr_bool("training"),
                                  c.attr_double("momentum"), c.attr_double("eps"));
      return std::vector<Tensor>{y, rm, rv};
    });
    ++n;
  }
  EXPECT_EQ(n, 6);
}

TEST(ParityNorm, Softmax) {
  for (const ParityCase* c : parity_cases("norm", "softmax_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{softmax(c.in("x"), c.attr_int("dim"))};
    });
  for (const ParityCase* c : parity_cases("norm", "log_softmax_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{log_softmax(c.in("x"), c.attr_int("dim"))};
    });
}

TEST(ParityNorm, CrossEntropy) {
  for (const ParityCase* c : parity_cases("norm", "cross_entropy_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{cross_entropy(c.in("x"), c.in("t"), c.attr_int("ignore_index"),
                                               c.attr_double("smoothing"), c.attr("reduction"))};
    });
}

TEST(ParityNorm, Embedding) {
  for (const ParityCase* c : parity_cases("norm", "embedding_plain"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{embedding(c.in("w"), c.in("i"))};
    });
  for (const ParityCase* c : parity_cases("norm", "embedding_padding"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{embedding(c.in("w"), c.in("i"), c.attr_int("padding_idx"))};
    });
}

}  // namespace
}  // namespace iris::testing
