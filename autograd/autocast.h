#pragma once
// Mixed precision, part 1: autocast. Inside an AutocastGuard, the matrix products (matmul,
// bmm, linear) on a CUDA device take float32 operands in the guard's dtype (bfloat16 or
// float16) on the tensor cores, with fp32 accumulation, and hand back float32: parameters
// stay float32 (the master weights), gradients reach them in float32 through the casts'
// derivatives. Everything else runs as before. On the CPU autocast changes nothing: CPU
// training stays fp32 (its kernels are fp32/fp64).
//
//   {
//     iris::AutocastGuard autocast(DType::bf16);
//     loss = model.forward(...);
//   }
//   loss.backward();   // the recorded casts take the gradients back to float32
//
// With float16, scale the loss (nn::GradScaler) so small gradients do not flush to zero.
#include <optional>

#include "core/tensor.h"

namespace iris {

class AutocastGuard {
 public:
  // dtype: bf16 or f16. enabled = false turns autocast off inside the scope.
  explicit AutocastGuard(DType dtype = DType::bf16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

bool autocast_enabled();  // on this thread
// The dtype a matrix product with these operands computes in under autocast, or nullopt
// (autocast off, a CPU operand, or operands that are not float32).
std::optional<DType> autocast_dtype(const Tensor& a, const Tensor& b);

}  // namespace iris
