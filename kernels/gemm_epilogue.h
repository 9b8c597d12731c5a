#pragma once
// GEMM with a fused epilogue (any device): out[i] = act(a[i] @ b[i] + bias) for a [B, M, K],
// b [B, K, N], out [B, M, N] dense, bias [N] (one value per output column, i.e. per output
// feature of a linear layer), operands laid out as for batched_gemm (kernels/linalg.h).
// On a real GPU the CUDA backend runs it through cuBLASLt's BIAS / GELU_BIAS epilogues; under
// the emulator (and on request) its hand-written kernels apply the same epilogue in registers.
#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

enum class GemmEpilogue {
  none,            // out = a @ b (bias ignored; may be undefined)
  bias,            // out = a @ b + bias
  bias_gelu_tanh,  // out = gelu_tanh(a @ b + bias): cuBLASLt's GELU is the tanh approximation
};

// Which CUDA implementation may run: `automatic` takes cuBLASLt where it is available and
// supports the problem; `hand_written` forces iris's own kernels (what `iris profile` times
// against cuBLASLt). The CPU backend has one implementation and ignores it.
enum class GemmImpl { automatic, hand_written };

const char* gemm_epilogue_name(GemmEpilogue ep);

// The checks every backend makes (op "gemm_epilogue"): 3-d operands whose shapes agree, one
// dtype, out dense, and for an epilogue with a bias a dense [N] bias on out's device.
void check_gemm_epilogue_args(const Tensor& a, const Tensor& b, const Tensor& bias,
                              const Tensor& out, GemmEpilogue ep);

IRIS_DECLARE_KERNEL(gemm_epilogue, void(const Tensor& a, const Tensor& b, const Tensor& bias,
                                        const Tensor& out, GemmEpilogue ep, GemmImpl impl));

}  // namespace iris::kernels
