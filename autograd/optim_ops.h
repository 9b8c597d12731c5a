#pragma once
// Optimizer updates, exactly as torch.optim (single-tensor code path): in place on many
// parameters at once, not recorded by autograd, bumping the version of every tensor
// written. params, their grads and their state tensors must match in shape, dtype
// (float32 or float64) and device; params and state must be contiguous.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace iris {

// torch.optim.AdamW: p *= 1 - lr*wd; m = lerp(m, g, 1 - beta1); v = beta2*v + (1-beta2)*g*g;
// p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps). step is 1-based
// (the count after this update); maximize negates the gradient.
void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                int64_t step, double lr, double beta1 = 0.9, double beta2 = 0.999,
                double eps = 1e-8, double weight_decay = 1e-2, bool maximize = false);

// torch.optim.SGD. momentum_buffers holds one buffer per param (or is empty, meaning none
// yet); an undefined entry is PyTorch's None: it is created here from the first gradient.
// With momentum == 0 the buffers are not touched.
void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              std::vector<Tensor>& momentum_buffers, double lr, double momentum = 0,
              double dampening = 0, double weight_decay = 0, bool nesterov = false,
              bool maximize = false);

}  // namespace iris
