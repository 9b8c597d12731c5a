#pragma once
// The tensor-core attention forward (attention_mma.cu) and backward (attention_mma_bwd.cu),
// called by attention.cu's attention_forward / attention_backward for bf16 / fp16 inputs.
#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/emu/cuda_compat.h"  // IRIS_KERNEL_NS

namespace iris::IRIS_KERNEL_NS {

// Runs the forward on tensor cores and returns true when the shapes allow it (head dims 32,
// 64 or 128 with Dv == D); returns false, touching nothing, otherwise. lse is float32.
bool attention_forward_mma(const Tensor& q, const Tensor& k, const Tensor& v,
                           const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse);

// The backward on tensor cores (head dims 32, 64 and 128, Dv == D; dq/dk/dv/dout share the
// strides of q/k/v/out); returns false, touching nothing, for other shapes.
bool attention_backward_mma(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& dout, const Tensor& lse, const kernels::AttentionMasks& m,
                            const Tensor& dq, const Tensor& dk, const Tensor& dv);

}  // namespace iris::IRIS_KERNEL_NS
