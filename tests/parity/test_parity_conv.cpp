// Convolution and pooling against PyTorch (cases in tests/parity/cases_conv.py).
#include <array>
#include <string>

#include "autograd/conv.h"
#include "tests/support/parity.h"

namespace iris::testing {
namespace {

// "h,w" -> {h, w}
std::array<int64_t, 2> pair_attr(const ParityCase& c, const std::string& key) {
  const std::string s = c.attr(key);
  const size_t comma = s.find(',');
  return {std::stoll(s.substr(0, comma)), std::stoll(s.substr(comma + 1))};
}

TEST(ParityConv, Conv2d) {
  int n = 0;
  for (const ParityCase* c : parity_cases("conv", "conv2d_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{conv2d(c.in("x"), c.in("w"), c.has_in("b") ? c.in("b") : Tensor(),
                                        pair_attr(c, "stride"), pair_attr(c, "padding"),
                                        pair_attr(c, "dilation"), c.attr_int("groups"))};
    });
    ++n;
  }
  EXPECT_EQ(n, 11);
}

TEST(ParityConv, MaxPool2d) {
  int n = 0;
  for (const ParityCase* c : parity_cases("conv", "max_pool2d_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      auto [out, indices] = max_pool2d_with_indices(
          c.in("x"), pair_attr(c, "kernel"), pair_attr(c, "stride"), pair_attr(c, "padding"),
          pair_attr(c, "dilation"), c.attr_bool("ceil_mode"));
      return std::vector<Tensor>{out, indices};
    });
    ++n;
  }
  EXPECT_EQ(n, 5);
}

TEST(ParityConv, AvgPool2d) {
  int n = 0;
  for (const ParityCase* c : parity_cases("conv", "avg_pool2d_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      const int64_t divisor = c.attr_int("divisor");
      return std::vector<Tensor>{avg_pool2d(
          c.in("x"), pair_attr(c, "kernel"), pair_attr(c, "stride"), pair_attr(c, "padding"),
          c.attr_bool("ceil_mode"), c.attr_bool("count_include_pad"),
          divisor ? std::optional<int64_t>(divisor) : std::nullopt)};
    });
    ++n;
  }
  EXPECT_EQ(n, 6);
}

TEST(ParityConv, AdaptiveAvgPool2d) {
  int n = 0;
  for (const ParityCase* c : parity_cases("conv", "adaptive_avg_pool2d_")) {
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{adaptive_avg_pool2d(c.in("x"), pair_attr(c, "output_size"))};
    });
    ++n;
  }
  EXPECT_EQ(n, 5);
}

}  // namespace
}  // namespace iris::testing
