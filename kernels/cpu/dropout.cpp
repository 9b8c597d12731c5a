// CPU dropout: the Philox keep mask of kernels/dropout.h, one Philox block per
// four consecutive stream elements, applied as x * (kept ? scale : 0). bf16/f16 multiply
// in float by the float scale and round once (the fp32 mask, PyTorch's accscalar scale).
#include "kernels/dropout.h"

#include <cmath>
#include <cstdint>

#include "core/philox.h"
#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(dropout_apply)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct DropoutTraits {
  // Elements per parallel chunk (Philox costs ~10 rounds per 4 elements).
  static constexpr int64_t kGrain = 8192;
  static_assert(kGrain % 4 == 0, "chunks start on Philox block boundaries when offset does");
};

void dropout_apply_cpu(const Tensor& x, double p, uint64_t seed, uint64_t offset,
                       const Tensor& out) {
  // uniform = (bits >> 8) * 2^-24 >= p  <=>  (bits >> 8) >= ceil(p * 2^24) (exact in double).
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(p * 16777216.0));
  dispatch_float_or_half(x.dtype(), "dropout", [&]<class T>() {
    using A = compute_t<T>;
    const A scale = p < 1 ? static_cast<A>(1.0 / (1.0 - p)) : A(0);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    parallel_for(0, x.numel(), DropoutTraits::kGrain, [&](int64_t b, int64_t e) {
      uint64_t k = offset + static_cast<uint64_t>(b);
      philox::U32x4 block = philox::block(seed, k >> 2);
      for (int64_t i = b; i < e; ++i, ++k) {
        if ((k & 3) == 0 && i != b) block = philox::block(seed, k >> 2);
        const bool keep = (block.v[k & 3] >> 8) >= threshold;
        po[i] = store_compute<T>(load_compute(px[i]) * (keep ? scale : A(0)));
      }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(dropout_apply, CPU, dropout_apply_cpu);

}  // namespace iris::cpu
