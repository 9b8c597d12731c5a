// CPU optimizer updates: one parallel pass over the elements of every tensor in the
// list. The arithmetic follows torch.optim's single-tensor code step by step
// (hyper-parameters combined in double, then rounded to the tensor's type).
#include "kernels/optim.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(adamw_step)
IRIS_DEFINE_KERNEL_TABLE(sgd_step)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct OptimKernelTraits {
  // Elements per thread at least: a few flops each, memory bound.
  static constexpr int64_t kGrainElements = 1 << 15;
  static_assert(kGrainElements >= 1024);
};

// Calls span(i, begin, end) for runs of tensor i's elements, all tensors' elements
// split over the pool as one range.
template <class Span>
void for_each_span(const std::vector<Tensor>& tensors, Span span) {
  std::vector<int64_t> start(tensors.size() + 1, 0);
  for (size_t i = 0; i < tensors.size(); ++i) start[i + 1] = start[i] + tensors[i].numel();
  parallel_for(0, start.back(), OptimKernelTraits::kGrainElements, [&](int64_t b, int64_t e) {
    size_t i =
        static_cast<size_t>(std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    while (b < e) {
      const int64_t stop = std::min(e, start[i + 1]);
      if (stop > b) span(i, b - start[i], stop - start[i]);
      b = stop;
      ++i;
    }
  });
}

template <class T>
T* at(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// PyTorch's lerp: the form depends on the weight so either end is reproduced exactly.
template <class T>
T lerp(T self, T end, T w) {
  return std::abs(w) < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

void adamw_step_cpu(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                    const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                    const kernels::AdamWHyper& hp) {
  const double bias_correction1 = 1 - std::pow(hp.beta1, static_cast<double>(hp.step));
  const double bias_correction2 = 1 - std::pow(hp.beta2, static_cast<double>(hp.step));
  const double step_size = hp.lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for_each_span(params, [&](size_t i, int64_t b, int64_t e) {
    dispatch_float(params[i].dtype(), "adamw_step", [&]<class T>() {
      const T decay = T(1 - hp.lr * hp.weight_decay), w1 = T(1 - hp.beta1), beta2 = T(hp.beta2);
      const T w2 = T(1 - hp.beta2), c2 = T(bias_correction2_sqrt), eps = T(hp.eps);
      const T neg_step = T(-step_size);
      T* p = at<T>(params[i]);
      const T* g = at<T>(grads[i]);
      T* m = at<T>(exp_avg[i]);
      T* v = at<T>(exp_avg_sq[i]);
      for (int64_t k = b; k < e; ++k) {
        const T grad = hp.maximize ? -g[k] : g[k];
        const T param = p[k] * decay;
        const T mk = lerp(m[k], grad, w1);
        const T vk = v[k] * beta2 + w2 * grad * grad;
        const T denom = std::sqrt(vk) / c2 + eps;
        m[k] = mk;
        v[k] = vk;
        p[k] = param + neg_step * mk / denom;
      }
    });
  });
}

void sgd_step_cpu(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                  const std::vector<Tensor>& momentum_buffers, const std::vector<uint8_t>& fresh,
                  const kernels::SgdHyper& hp) {
  const bool use_momentum = hp.momentum != 0;
  for_each_span(params, [&](size_t i, int64_t b, int64_t e) {
    dispatch_float(params[i].dtype(), "sgd_step", [&]<class T>() {
      const T wd = T(hp.weight_decay), mom = T(hp.momentum), keep = T(1 - hp.dampening);
      const T neg_lr = T(-hp.lr);
      const bool decay = hp.weight_decay != 0, first = use_momentum && fresh[i];
      T* p = at<T>(params[i]);
      const T* g = at<T>(grads[i]);
      T* buf = use_momentum ? at<T>(momentum_buffers[i]) : nullptr;
      for (int64_t k = b; k < e; ++k) {
        T d = hp.maximize ? -g[k] : g[k];
        if (decay) d = d + wd * p[k];
        if (use_momentum) {
          const T bk = first ? d : buf[k] * mom + keep * d;
          buf[k] = bk;
          d = hp.nesterov ? d + mom * bk : bk;
        }
        p[k] = p[k] + neg_lr * d;
      }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(adamw_step, CPU, adamw_step_cpu);
IRIS_REGISTER_KERNEL(sgd_step, CPU, sgd_step_cpu);

}  // namespace iris::cpu
