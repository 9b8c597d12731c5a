#pragma once
// cuBLASLt GEMM (gemm_lt.cu): the CUDA backend's GEMM on a real GPU, with cuBLASLt's BIAS and
// GELU_BIAS epilogues. gemm.cu decides per call (gemm_prefers_cublaslt) and falls back to its
// hand-written kernels, which are also what the emulator runs (it has no cuBLASLt).
#include <cstdint>

#include "core/dtype.h"
#include "kernels/gemm_epilogue.h"

namespace iris::kernels {

// One row-major GEMM as the CUDA backend sees it: out [B, M, N] (dense) =
// epilogue(alpha * A[b] @ B[b] + beta * out[b]), A(m, k) = a[b*a_bs + (a_trans ? k*lda + m :
// m*lda + k)], B(k, n) = b[b*b_bs + (b_trans ? n*ldb + k : k*ldb + n)]; batch stride 0
// broadcasts an operand.
struct GemmLtProblem {
  DType dtype = DType::f32;
  int64_t B = 0, M = 0, N = 0, K = 0;
  bool a_trans = false, b_trans = false;
  int64_t lda = 0, ldb = 0, a_bs = 0, b_bs = 0;
  double alpha = 1, beta = 0;
  GemmEpilogue ep = GemmEpilogue::none;
};

// Whether the CUDA backend hands the problem to cuBLASLt: only when cuBLASLt is available (a
// real GPU), the caller allows it, the dtype is one cuBLASLt computes in fp32 (fp32, bf16,
// fp16; fp64 stays on iris's kernel), nothing is empty and the leading dims are ones cuBLASLt
// accepts (its column-major view needs ld >= the stored rows). Pure, so the emulator tests it.
inline bool gemm_prefers_cublaslt(const GemmLtProblem& p, bool lt_available, GemmImpl impl) {
  if (!lt_available || impl != GemmImpl::automatic) return false;
  if (p.dtype != DType::f32 && p.dtype != DType::bf16 && p.dtype != DType::f16) return false;
  if (p.B <= 0 || p.M <= 0 || p.N <= 0 || p.K <= 0) return false;
  constexpr int64_t kMaxBatch = (int64_t(1) << 31) - 1;  // the layouts' batch count is int32
  if (p.B > kMaxBatch) return false;
  // Column-major view: D^T [N, M] = op(b) [N, K] @ op(a) [K, M].
  const int64_t b_rows = p.b_trans ? p.K : p.N, a_rows = p.a_trans ? p.M : p.K;
  return p.ldb >= b_rows && p.lda >= a_rows;
}

}  // namespace iris::kernels

// The entry points, for the backend's own sources (which include cuda_compat.h first); tests
// see only the pure decision above.
#if defined(IRIS_KERNEL_NS)
namespace iris::IRIS_KERNEL_NS {

// True when cuBLASLt's handle exists for the device (created once, cached); always false
// under the emulator.
bool cublaslt_available(int device);

// Runs p through cuBLASLt on this thread's current stream of `device`, with a workspace from
// the caching allocator on that stream (out = c; bias: [N] of p.dtype, or null when p.ep is
// none); safe to call from several threads and streams at once. Returns false, writing nothing,
// when cuBLASLt has no algorithm for the problem (the heuristic's answer is cached per shape,
// layout, epilogue and alignment); throws iris::Error on any other cuBLASLt or CUDA failure.
bool cublaslt_gemm(const kernels::GemmLtProblem& p, const void* a, const void* b, const void* bias,
                   void* c, int device);

}  // namespace iris::IRIS_KERNEL_NS
#endif
