#pragma once
// cuDNN's fused attention as the baseline of the 16-bit attention rows of `iris profile`: the
// SDPA forward (Q K^T, scale, optional causal mask, softmax with its log-sum-exp saved, P V)
// built op by op through the cuDNN graph (backend) API, which cuDNN fuses into its flash
// attention engine. IRIS_WITH_CUDA builds only; called on a real GPU.
#include <string>

#include "tools/profile.h"

namespace iris::tools {

// "cuDNN 9.19": the version of the loaded library.
std::string cudnn_version_name();

// The baseline for an attention_fwd / attention_bwd case whose inputs are bf16 or fp16. Where
// cuDNN cannot give a figure (the backward, per-sample lengths, a GPU older than sm_80, a
// graph no engine supports) the result's name starts with "n/a (" and its error says why;
// it never throws for those. A failing CUDA or cuDNN call throws iris::Error.
BaselineResult cudnn_attention(const ProfileCase& c, const PreparedCase& p, const TimingPolicy& tp);

}  // namespace iris::tools
