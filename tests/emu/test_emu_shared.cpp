// Shared-memory access forms through the checked views: float4 vector stores
// and loads (iris::ptr_cast), rows handed to device helpers as
// iris::smem_ptr<const float>, bf16 elements read as float, shared atomics and
// compound assignments -- all with the race detector on.
#include <cstring>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

float round_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // nearest even (the inputs are finite)
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(EmuShared, VectorPointerHelperBf16AtomicAndCompoundForms) {
  constexpr int R = SharedFormsTraits::kRows, C = SharedFormsTraits::kCols;
  std::vector<float> in(R * C);
  for (int i = 0; i < R * C; ++i) in[i] = 0.1f * static_cast<float>(i % 23) - 0.7f;
  DeviceArray<float> din(in), dout(R * C);
  for (uint64_t seed : {1, 2}) {
    ScopedConfig scoped(with_seed(seed));
    shared_forms(din.get(), dout.get());
    const std::vector<float> out = dout.host();
    for (int r = 0; r < R; ++r) {
      const int other = (r + 1) % R;
      float row_sum = 0;
      for (int k = 0; k < C; ++k) row_sum += in[other * C + k];  // the kernel's order
      for (int c = 0; c < C; c += 4) {
        const float* x = &in[r * C + c];
        EXPECT_EQ(out[r * C + c], x[0] + round_to_bf16(in[other * C + c]));
        EXPECT_EQ(out[r * C + c + 1], 2.0f * x[1]);
        EXPECT_EQ(out[r * C + c + 2], x[2] + 1.0f);
        EXPECT_EQ(out[r * C + c + 3], (x[3] - row_sum) + 4.0f);
      }
    }
  }
}

}  // namespace
}  // namespace iris::emu_test
