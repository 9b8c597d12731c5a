#include "tests/support/parity.h"

namespace iris::testing {
namespace {

TEST(ParityAttention, FusedMatchesMaterialisedSoftmax) {
  for (const ParityCase* c : parity_cases("attention", "attn_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      AttentionOptions opt;
      opt.causal = c.attr_int("causal") != 0;
      if (c.has_in("kpm")) opt.key_padding_mask = c.in("kpm");
      return std::vector<Tensor>{scaled_dot_product_attention(c.in("q"), c.in("k"), c.in("v"), opt)};
    });
}

}  // namespace
}  // namespace iris::testing
