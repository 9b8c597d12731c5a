#include "autograd/autocast.h"

#include "core/error.h"

namespace iris {
namespace {

struct AutocastState {
  bool enabled = false;
  DType dtype = DType::bf16;
};
thread_local AutocastState state;

}  // namespace

AutocastGuard::AutocastGuard(DType dtype, bool enabled)
    : prev_enabled_(state.enabled), prev_dtype_(state.dtype) {
  IRIS_CHECK(dtype == DType::bf16 || dtype == DType::f16,
             "AutocastGuard: dtype must be bfloat16 or float16, got ", dtype_name(dtype));
  state.enabled = enabled;
  state.dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  state.enabled = prev_enabled_;
  state.dtype = prev_dtype_;
}

bool autocast_enabled() { return state.enabled; }

std::optional<DType> autocast_dtype(const Tensor& a, const Tensor& b) {
  if (!state.enabled || !a.device().is_cuda() || a.dtype() != DType::f32 || b.dtype() != DType::f32)
    return std::nullopt;
  return state.dtype;
}

}  // namespace iris
