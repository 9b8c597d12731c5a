// GEMM with a bias / GELU epilogue on the CPU: the packed batched GEMM, then one pass over the
// rows of out. This is the reference the CUDA paths (cuBLASLt, hand-written) are tested against.
#include "kernels/gemm_epilogue.h"

#include "core/parallel.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise_math.h"
#include "kernels/linalg.h"

namespace iris::kernels {

IRIS_DEFINE_KERNEL_TABLE(gemm_epilogue)

const char* gemm_epilogue_name(GemmEpilogue ep) {
  switch (ep) {
    case GemmEpilogue::none:
      return "none";
    case GemmEpilogue::bias:
      return "bias";
    case GemmEpilogue::bias_gelu_tanh:
      return "bias+gelu_tanh";
  }
  return "?";
}

void check_gemm_epilogue_args(const Tensor& a, const Tensor& b, const Tensor& bias,
                              const Tensor& out, GemmEpilogue ep) {
  IRIS_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3,
             "gemm_epilogue: expected 3-d operands, got ", a.desc(), ", ", b.desc(), ", ",
             out.desc());
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  IRIS_CHECK(a.size(1) == M && b.size(1) == K && b.size(2) == N &&
                 (a.size(0) == B || a.size(0) == 1) && (b.size(0) == B || b.size(0) == 1),
             "gemm_epilogue: shapes do not agree: ", a.desc(), " @ ", b.desc(), " -> ", out.desc());
  IRIS_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(),
             "gemm_epilogue: dtype mismatch: ", a.desc(), ", ", b.desc(), ", ", out.desc());
  IRIS_CHECK(a.device() == out.device() && b.device() == out.device(),
             "gemm_epilogue: device mismatch: ", a.desc(), ", ", b.desc(), ", ", out.desc());
  IRIS_CHECK(out.is_contiguous(), "gemm_epilogue: out ", out.desc(), " must be dense");
  if (ep == GemmEpilogue::none) return;
  IRIS_CHECK(bias.defined(), "gemm_epilogue: epilogue ", gemm_epilogue_name(ep),
             " needs a bias for ", out.desc());
  IRIS_CHECK(bias.dim() == 1 && bias.size(0) == N && bias.dtype() == out.dtype() &&
                 bias.device() == out.device() && (N <= 1 || bias.stride(0) == 1),
             "gemm_epilogue: bias ", bias.desc(), " must be a dense [", N, "] of out's dtype ",
             "and device, out ", out.desc());
}

}  // namespace iris::kernels

namespace iris::cpu {
namespace {

void gemm_epilogue_cpu(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out,
                       kernels::GemmEpilogue ep, kernels::GemmImpl) {
  using kernels::GemmEpilogue;
  kernels::check_gemm_epilogue_args(a, b, bias, out, ep);
  kernels::batched_gemm_table().get(out.device())(a, b, out, 1.0, 0.0);
  if (ep == GemmEpilogue::none || out.numel() == 0) return;
  const int64_t N = out.size(2), rows = out.numel() / N;
  dispatch_float(out.dtype(), "gemm_epilogue", [&]<class T>() {
    const T* bv = static_cast<const T*>(bias.raw_data());
    T* o = out.data<T>();
    const bool gelu = ep == GemmEpilogue::bias_gelu_tanh;
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / N), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t n = 0; n < N; ++n) {
          const T v = o[r * N + n] + bv[n];
          o[r * N + n] = gelu ? kernels::unary_value(kernels::UnaryOp::gelu_tanh, {}, v) : v;
        }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(gemm_epilogue, CPU, gemm_epilogue_cpu);

}  // namespace iris::cpu
