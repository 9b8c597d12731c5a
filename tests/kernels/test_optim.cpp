// adamw_step / sgd_step against a scalar transcription of torch.optim's single-tensor
// code, over several steps (bias corrections change every step), and bad inputs.
#include <cmath>

#include "autograd/function.h"
#include "autograd/optim_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

// ---- scalar references (torch/optim/adamw.py, sgd.py; one element at a time) ----

template <class T>
T torch_lerp(T self, T end, T w) {
  return std::abs(w) < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

struct AdamCfg {
  double lr, beta1, beta2, eps, wd;
  bool maximize;
};

template <class T>
void ref_adamw(std::vector<T>& p, const std::vector<T>& grad, std::vector<T>& m, std::vector<T>& v,
               int64_t step, const AdamCfg& a) {
  const double bc1 = 1 - std::pow(a.beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(a.beta2, static_cast<double>(step));
  const double step_size = a.lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  for (size_t k = 0; k < p.size(); ++k) {
    const T g = a.maximize ? -grad[k] : grad[k];
    p[k] = p[k] * T(1 - a.lr * a.wd);                   // param.mul_(1 - lr * weight_decay)
    m[k] = torch_lerp(m[k], g, T(1 - a.beta1));         // exp_avg.lerp_(grad, 1 - beta1)
    v[k] = v[k] * T(a.beta2) + T(1 - a.beta2) * g * g;  // mul_(beta2).addcmul_(g, g, 1 - beta2)
    const T denom = std::sqrt(v[k]) / T(bc2_sqrt) + T(a.eps);
    p[k] = p[k] + T(-step_size) * m[k] / denom;  // addcdiv_(exp_avg, denom, value=-step_size)
  }
}

struct SgdCfg {
  double lr, momentum, dampening, wd;
  bool nesterov, maximize;
};

// `has_buf` is PyTorch's "buf is not None".
template <class T>
void ref_sgd(std::vector<T>& p, const std::vector<T>& grad, std::vector<T>& buf, bool& has_buf,
             const SgdCfg& s) {
  for (size_t k = 0; k < p.size(); ++k) {
    T d = s.maximize ? -grad[k] : grad[k];
    if (s.wd != 0) d = d + T(s.wd) * p[k];
    if (s.momentum != 0) {
      buf[k] = has_buf ? buf[k] * T(s.momentum) + T(1 - s.dampening) * d : d;
      d = s.nesterov ? d + T(s.momentum) * buf[k] : buf[k];
    }
    p[k] = p[k] + T(-s.lr) * d;
  }
  if (s.momentum != 0) has_buf = true;
}

// Parameter shapes that are not multiples of anything, a scalar, an empty one, and one
// large enough to be split over threads.
const std::vector<Shape> kShapes = {{3, 5}, {}, {0, 4}, {7}, {70001}};

template <class T>
std::vector<T> values(const Tensor& t) {
  return t.to_vector<T>();
}

template <class T>
void expect_equal_values(const Tensor& t, const std::vector<T>& ref, double rtol) {
  EXPECT_CLOSE(t, Tensor::from_vector(ref, t.shape()), rtol, 0);
}

template <class T>
void run_adamw_case(const AdamCfg& a, uint64_t seed) {
  const DType dt = dtype_v<T>;
  std::vector<Tensor> params, m, v;
  std::vector<std::vector<T>> rp, rm, rv;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    params.push_back(randn_seeded(kShapes[i], seed + i, dt));
    m.push_back(zeros(kShapes[i], dt));
    v.push_back(zeros(kShapes[i], dt));
    rp.push_back(values<T>(params[i]));
    rm.push_back(values<T>(m[i]));
    rv.push_back(values<T>(v[i]));
  }
  for (int64_t step = 1; step <= 6; ++step) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < kShapes.size(); ++i) {
      Tensor g = randn_seeded(kShapes[i], seed * 100 + step * 10 + i, dt);
      ref_adamw(rp[i], values<T>(g), rm[i], rv[i], step, a);
      grads.push_back(g);
    }
    adamw_step(params, grads, m, v, step, a.lr, a.beta1, a.beta2, a.eps, a.wd, a.maximize);
  }
  // The same operations in the same order: equal up to the last bit.
  for (size_t i = 0; i < kShapes.size(); ++i) {
    expect_equal_values(params[i], rp[i], 0);
    expect_equal_values(m[i], rm[i], 0);
    expect_equal_values(v[i], rv[i], 0);
  }
}

TEST(AdamW, MatchesTorchAlgorithmOverSteps) {
  run_adamw_case<double>({1e-3, 0.9, 0.999, 1e-8, 1e-2, false}, 1);
  run_adamw_case<float>({1e-3, 0.9, 0.999, 1e-8, 1e-2, false}, 2);
  run_adamw_case<double>({0.05, 0.8, 0.99, 1e-6, 0.0, false}, 3);  // no decay
  run_adamw_case<double>({0.01, 0.5, 0.9, 1e-3, 0.1, true}, 4);    // maximize, lerp's other form
  run_adamw_case<float>({0.01, 0.3, 0.9, 1e-3, 0.1, true}, 5);
}

TEST(AdamW, FirstStepValue) {
  // Step 1 with bias correction: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps).
  Tensor p = Tensor::from_vector<double>({1.0, -2.0}, {2});
  Tensor g = Tensor::from_vector<double>({0.5, -4.0}, {2});
  Tensor m = zeros({2}, DType::f64), v = zeros({2}, DType::f64);
  adamw_step({p}, {g}, {m}, {v}, 1, 0.1, 0.9, 0.999, 1e-8, 0.0);
  const std::vector<double> out = p.to_vector<double>();
  EXPECT_NEAR(out[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-12);
  EXPECT_NEAR(out[1], -2.0 + 0.1 * 4.0 / (4.0 + 1e-8), 1e-12);
}

TEST(AdamW, MixedDtypesStridedGradsAndVersions) {
  Tensor a = randn_seeded({4, 3}, 10, DType::f32), b = randn_seeded({6}, 11, DType::f64);
  a.set_requires_grad(true);  // parameters are leaves requiring grad: updated under no-grad
  const Tensor ga = randn_seeded({3, 4}, 12, DType::f32).t(),
               gb = randn_seeded({6}, 13, DType::f64);
  std::vector<Tensor> m = {zeros({4, 3}), zeros({6}, DType::f64)};
  std::vector<Tensor> v = {zeros({4, 3}), zeros({6}, DType::f64)};
  std::vector<float> rpa = values<float>(a), rma(12, 0), rva(12, 0);
  std::vector<double> rpb = values<double>(b), rmb(6, 0), rvb(6, 0);
  const AdamCfg cfg{0.02, 0.9, 0.999, 1e-8, 0.01, false};
  ref_adamw(rpa, values<float>(ga), rma, rva, 1, cfg);
  ref_adamw(rpb, values<double>(gb), rmb, rvb, 1, cfg);
  const uint32_t version = a.storage()->version();
  const autograd::Saved saved(a);
  adamw_step({a, b}, {ga, gb}, m, v, 1, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.wd);
  EXPECT_GT(a.storage()->version(), version);
  EXPECT_GT(m[0].storage()->version(), 0u);
  EXPECT_IRIS_ERROR(saved.get(), "modified by an in-place operation");
  expect_equal_values(a, rpa, 0);
  expect_equal_values(b, rpb, 0);
}

template <class T>
void run_sgd_case(const SgdCfg& s, uint64_t seed) {
  const DType dt = dtype_v<T>;
  std::vector<Tensor> params;
  std::vector<std::vector<T>> rp, rb;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    params.push_back(randn_seeded(kShapes[i], seed + i, dt));
    rp.push_back(values<T>(params[i]));
    rb.push_back(std::vector<T>(params[i].numel()));
  }
  std::vector<bool> has_buf(kShapes.size(), false);
  std::vector<Tensor> buffers;  // none yet, as in a fresh torch.optim.SGD
  for (int64_t step = 1; step <= 5; ++step) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < kShapes.size(); ++i) {
      Tensor g = randn_seeded(kShapes[i], seed * 100 + step * 10 + i, dt);
      bool hb = has_buf[i];
      ref_sgd(rp[i], values<T>(g), rb[i], hb, s);
      has_buf[i] = hb;
      grads.push_back(g);
    }
    sgd_step(params, grads, buffers, s.lr, s.momentum, s.dampening, s.wd, s.nesterov, s.maximize);
  }
  for (size_t i = 0; i < kShapes.size(); ++i) {
    expect_equal_values(params[i], rp[i], 0);
    if (s.momentum != 0) expect_equal_values(buffers[i], rb[i], 0);
  }
  if (s.momentum == 0) {
    EXPECT_TRUE(buffers.empty());
  }
}

TEST(Sgd, MatchesTorchAlgorithmOverSteps) {
  run_sgd_case<double>({0.1, 0.0, 0.0, 0.0, false, false}, 20);   // plain
  run_sgd_case<double>({0.1, 0.9, 0.0, 0.0, false, false}, 21);   // momentum
  run_sgd_case<float>({0.05, 0.9, 0.3, 1e-2, false, false}, 22);  // dampening, decay
  run_sgd_case<double>({0.05, 0.9, 0.0, 1e-2, true, false}, 23);  // nesterov
  run_sgd_case<float>({0.05, 0.8, 0.0, 1e-3, true, true}, 24);    // nesterov, maximize
  run_sgd_case<double>({0.2, 0.0, 0.0, 0.1, false, true}, 25);    // maximize, decay
}

TEST(Sgd, FirstStepInitialisesBufferToGradient) {
  // With dampening, PyTorch's first buffer is the gradient itself, not (1 - dampening) * g.
  Tensor p = Tensor::from_vector<double>({1.0}, {1}), g = Tensor::from_vector<double>({2.0}, {1});
  std::vector<Tensor> bufs(1);
  sgd_step({p}, {g}, bufs, 0.1, 0.9, 0.5);
  EXPECT_EQ(bufs[0].to_vector<double>()[0], 2.0);
  EXPECT_DOUBLE_EQ(p.to_vector<double>()[0], 1.0 - 0.1 * 2.0);
  sgd_step({p}, {g}, bufs, 0.1, 0.9, 0.5);
  EXPECT_DOUBLE_EQ(bufs[0].to_vector<double>()[0], 0.9 * 2.0 + 0.5 * 2.0);
}

TEST(OptimErrors, BadInputs) {
  const Tensor p = zeros({2, 3}), g = zeros({2, 3});
  const std::vector<Tensor> st = {zeros({2, 3})};
  auto adam = [&](const std::vector<Tensor>& ps, const std::vector<Tensor>& gs,
                  const std::vector<Tensor>& m, int64_t step = 1, double lr = 1e-3,
                  double beta1 = 0.9, double eps = 1e-8,
                  double wd = 0.0) { adamw_step(ps, gs, m, st, step, lr, beta1, 0.999, eps, wd); };
  EXPECT_IRIS_ERROR(adam({p}, {Tensor()}, st), "adamw_step: param 0 float32[2, 3] cpu has no grad");
  EXPECT_IRIS_ERROR(adam({p}, {zeros({3, 2})}, st),
                    "adamw_step: grad float32[3, 2] cpu of param 0");
  EXPECT_IRIS_ERROR(adam({p}, {zeros({2, 3}, DType::f64)}, st), "adamw_step: grad float64");
  EXPECT_IRIS_ERROR(adam({p}, {g}, {zeros({2, 2})}), "adamw_step: exp_avg float32[2, 2]");
  EXPECT_IRIS_ERROR(adam({p}, {g}, {zeros({3, 2}).t()}), "is not contiguous");
  EXPECT_IRIS_ERROR(adam({zeros({3, 2}).t()}, {g}, st), "adamw_step: param 0");
  EXPECT_IRIS_ERROR(adam({p}, {}, st), "adamw_step: 0 grads for 1 params");
  EXPECT_IRIS_ERROR(adam({p}, {g}, st, 0), "adamw_step: step is 1-based");
  EXPECT_IRIS_ERROR(adam({p}, {g}, st, 1, -1.0), "adamw_step: invalid learning rate");
  EXPECT_IRIS_ERROR(adam({p}, {g}, st, 1, 1e-3, 1.0), "adamw_step: invalid beta1");
  EXPECT_IRIS_ERROR(adam({p}, {g}, st, 1, 1e-3, 0.9, -1.0), "adamw_step: invalid epsilon");
  EXPECT_IRIS_ERROR(adam({p}, {g}, st, 1, 1e-3, 0.9, 1e-8, -0.1),
                    "adamw_step: invalid weight_decay");
  EXPECT_IRIS_ERROR(adam({Tensor::from_vector<int64_t>({1}, {1})}, {g}, st),
                    "not float32 or float64");

  std::vector<Tensor> bufs;
  EXPECT_IRIS_ERROR(sgd_step({p}, {Tensor()}, bufs, 0.1, 0.9),
                    "sgd_step: param 0 float32[2, 3] cpu has no grad");
  EXPECT_TRUE(bufs.empty() || !bufs[0].defined());  // nothing created by a failed call
  EXPECT_IRIS_ERROR(sgd_step({p}, {zeros({6})}, bufs, 0.1), "sgd_step: grad float32[6] cpu");
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, bufs, 0.1, 0.0, 0.0, 0.0, true), "sgd_step: nesterov");
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, bufs, 0.1, 0.9, 0.1, 0.0, true), "sgd_step: nesterov");
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, bufs, -0.1), "sgd_step: invalid learning rate");
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, bufs, 0.1, -0.5), "sgd_step: invalid momentum");
  std::vector<Tensor> wrong = {zeros({2, 3}, DType::f64)};
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, wrong, 0.1, 0.9), "sgd_step: momentum buffer float64");
  std::vector<Tensor> two(2);
  EXPECT_IRIS_ERROR(sgd_step({p}, {g}, two, 0.1, 0.9), "sgd_step: 2 momentum buffers for 1 params");
}

}  // namespace
}  // namespace iris
