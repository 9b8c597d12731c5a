#pragma once
// Optimizer updates over many tensors in one call, in place. Every tensor is dense;
// params[i], grads[i] and the state tensors of i share a shape and dtype (float32 or
// float64; different i may differ). Work is split over the elements of all tensors.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

struct AdamWHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, for the bias corrections
  bool maximize;
};

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
};

// torch.optim.AdamW's update of params, exp_avg and exp_avg_sq.
IRIS_DECLARE_KERNEL(adamw_step,
                    void(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                         const AdamWHyper& hp));
// torch.optim.SGD's update. momentum_buffers is empty when momentum == 0; where
// fresh[i] != 0 buffer i is uninitialised and becomes the (decayed) gradient.
IRIS_DECLARE_KERNEL(sgd_step,
                    void(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& momentum_buffers,
                         const std::vector<uint8_t>& fresh, const SgdHyper& hp));

}  // namespace iris::kernels
