// CUDA optimizer updates, fused over many tensors per launch: the host packs up to
// kMaxTensors (pointer, numel) entries of one dtype into a kernel argument; block
// row blockIdx.y walks tensor y with a grid-stride loop over x. The arithmetic is the
// CPU's (kernels/cpu/optim.cpp) step by step: hyper-parameters combined in double on
// the host, rounded to the tensor's type, then torch.optim's single-tensor formulas.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/emu/cuda_compat.h"
#include "kernels/optim.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct OptimTraits {
  static constexpr int kThreads = 256;
  static constexpr int kMaxTensors = 32;        // entries per launch (kernel argument space)
  static constexpr int64_t kElemsPerBlock = 4 * kThreads;  // grid.x sizing
  static constexpr int64_t kMaxBlocksX = 1024;
  static_assert(kThreads % 32 == 0 && kMaxTensors <= 65535);
};
using Tr = OptimTraits;

template <class T>
struct Entry {
  T* p;
  const T* g;
  T* s1;  // exp_avg / momentum buffer (may be null)
  T* s2;  // exp_avg_sq
  int64_t n;
  int fresh;
};

template <class T>
struct EntryList {
  Entry<T> e[Tr::kMaxTensors];
};

template <class T>
struct AdamWParams {
  T decay, w1, beta2, w2, c2, eps, neg_step;
  bool maximize;
};

template <class T>
struct SgdParams {
  T wd, mom, keep, neg_lr;
  bool decay, use_momentum, nesterov, maximize;
};

// PyTorch's lerp: the form depends on the weight so either end is reproduced exactly.
template <class T>
__device__ __forceinline__ T lerp(T self, T end, T w) {
  const T aw = w < T(0) ? -w : w;
  return aw < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

#define IRIS_OPTIM_LOOP(k, n)                                                             \
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < (n); \
       k += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    adamw_kernel(EntryList<T> list, AdamWParams<T> hp) {
  const Entry<T>& t = list.e[blockIdx.y];
  T* p = t.p;
  const T* g = t.g;
  T* m = t.s1;
  T* v = t.s2;
  IRIS_OPTIM_LOOP(k, t.n) {
    const T grad = hp.maximize ? -g[k] : g[k];
    const T param = p[k] * hp.decay;
    const T mk = lerp(m[k], grad, hp.w1);
    const T vk = v[k] * hp.beta2 + hp.w2 * grad * grad;
    const T denom = std::sqrt(vk) / hp.c2 + hp.eps;
    m[k] = mk;
    v[k] = vk;
    p[k] = param + hp.neg_step * mk / denom;
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads) sgd_kernel(EntryList<T> list, SgdParams<T> hp) {
  const Entry<T>& t = list.e[blockIdx.y];
  T* p = t.p;
  const T* g = t.g;
  T* buf = t.s1;
  const bool first = hp.use_momentum && t.fresh;
  IRIS_OPTIM_LOOP(k, t.n) {
    T d = hp.maximize ? -g[k] : g[k];
    if (hp.decay) d = d + hp.wd * p[k];
    if (hp.use_momentum) {
      const T bk = first ? d : buf[k] * hp.mom + hp.keep * d;
      buf[k] = bk;
      d = hp.nesterov ? d + hp.mom * bk : bk;
    }
    p[k] = p[k] + hp.neg_lr * d;
  }
}

template <class T>
T* at(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// Launches kernel(list, hp) for the tensors of dtype T, kMaxTensors at a time.
// make(i) builds entry i.
template <class T, class Make, class Launch>
void for_each_batch(const std::vector<Tensor>& params, DType dt, Make make, Launch launch) {
  EntryList<T> list{};
  int count = 0;
  int64_t most = 0;
  auto flush = [&] {
    if (count == 0) return;
    const int64_t bx = std::min<int64_t>(
        std::max<int64_t>(1, (most + Tr::kElemsPerBlock - 1) / Tr::kElemsPerBlock),
        Tr::kMaxBlocksX);
    launch(list, dim3(static_cast<unsigned>(bx), static_cast<unsigned>(count)));
    list = EntryList<T>{};
    count = 0;
    most = 0;
  };
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].dtype() != dt || params[i].numel() == 0) continue;
    list.e[count++] = make(i);
    most = std::max(most, params[i].numel());
    if (count == Tr::kMaxTensors) flush();
  }
  flush();
}

void check_lists(const char* op, const std::vector<Tensor>& params,
                 std::initializer_list<const std::vector<Tensor>*> others) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    IRIS_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, op,
               ": unsupported dtype ", dtype_name(p.dtype()), " on cuda (float32/float64), param ",
               i, " ", p.desc());
    IRIS_CHECK(p.is_contiguous(), op, ": param ", i, " must be dense, got ", p.desc());
    for (const std::vector<Tensor>* o : others) {
      const Tensor& t = (*o)[i];
      IRIS_CHECK(t.is_contiguous() && t.numel() == p.numel() && t.dtype() == p.dtype(), op,
                 ": tensor ", t.desc(), " does not match param ", i, " ", p.desc());
    }
  }
}

void adamw_step_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                     const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq,
                     const kernels::AdamWHyper& hp) {
  check_lists("adamw_step", params, {&grads, &exp_avg, &exp_avg_sq});
  const double bias_correction1 = 1 - std::pow(hp.beta1, static_cast<double>(hp.step));
  const double bias_correction2 = 1 - std::pow(hp.beta2, static_cast<double>(hp.step));
  const double step_size = hp.lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  auto run = [&]<class T>(DType dt) {
    const AdamWParams<T> k{T(1 - hp.lr * hp.weight_decay), T(1 - hp.beta1), T(hp.beta2),
                           T(1 - hp.beta2), T(bias_correction2_sqrt), T(hp.eps), T(-step_size),
                           hp.maximize};
    for_each_batch<T>(
        params, dt,
        [&](size_t i) {
          return Entry<T>{at<T>(params[i]), at<T>(grads[i]), at<T>(exp_avg[i]),
                          at<T>(exp_avg_sq[i]), params[i].numel(), 0};
        },
        [&](const EntryList<T>& list, dim3 grid) {
          IRIS_LAUNCH(adamw_kernel<T>, grid, dim3(Tr::kThreads), 0, nullptr, list, k);
        });
  };
  run.template operator()<float>(DType::f32);
  run.template operator()<double>(DType::f64);
}

void sgd_step_cuda(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                   const std::vector<Tensor>& momentum_buffers, const std::vector<uint8_t>& fresh,
                   const kernels::SgdHyper& hp) {
  const bool use_momentum = hp.momentum != 0;
  if (use_momentum) {
    IRIS_CHECK(momentum_buffers.size() == params.size() && fresh.size() == params.size(),
               "sgd_step: ", params.size(), " params but ", momentum_buffers.size(),
               " momentum buffers and ", fresh.size(), " fresh flags");
    check_lists("sgd_step", params, {&grads, &momentum_buffers});
  } else {
    check_lists("sgd_step", params, {&grads});
  }
  auto run = [&]<class T>(DType dt) {
    const SgdParams<T> k{T(hp.weight_decay), T(hp.momentum), T(1 - hp.dampening), T(-hp.lr),
                         hp.weight_decay != 0, use_momentum, hp.nesterov, hp.maximize};
    for_each_batch<T>(
        params, dt,
        [&](size_t i) {
          return Entry<T>{at<T>(params[i]), at<T>(grads[i]),
                          use_momentum ? at<T>(momentum_buffers[i]) : nullptr, nullptr,
                          params[i].numel(), use_momentum && fresh[i] ? 1 : 0};
        },
        [&](const EntryList<T>& list, dim3 grid) {
          IRIS_LAUNCH(sgd_kernel<T>, grid, dim3(Tr::kThreads), 0, nullptr, list, k);
        });
  };
  run.template operator()<float>(DType::f32);
  run.template operator()<double>(DType::f64);
}

}  // namespace

IRIS_REGISTER_KERNEL(adamw_step, CUDA, adamw_step_cuda);
IRIS_REGISTER_KERNEL(sgd_step, CUDA, sgd_step_cuda);

}  // namespace iris::IRIS_KERNEL_NS
