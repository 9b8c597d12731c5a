// Portable build of the attention tile code (baseline x86-64 or any target): the fp64 path
// and the fp32 fallback.
#define IRIS_ATTENTION_ISA generic
#include "kernels/cpu/attention_tiles.h"

namespace iris::cpu::attention_detail {

template <>
const AttentionKernels<float>* generic_attention_kernels<float>() {
  return generic::kernel_table<float>();
}

template <>
const AttentionKernels<double>* generic_attention_kernels<double>() {
  return generic::kernel_table<double>();
}

}  // namespace iris::cpu::attention_detail
