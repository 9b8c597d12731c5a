// Backend comparison for the fused optimizer updates: several AdamW and SGD steps on
// the CUDA device (emulated in CI, real under `ctest -L cuda`) against the CPU, over
// lists of tensors of odd sizes and both float types, more tensors than one launch holds.
#include "autograd/optim_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

struct Lists {
  std::vector<Tensor> p, g, a, b;
};

// Tensor i has an odd size; dtypes alternate so one call mixes float and double.
Lists make_lists(int count, uint64_t seed, bool state) {
  Lists l;
  for (int i = 0; i < count; ++i) {
    const DType dt = i % 3 == 1 ? DType::f64 : DType::f32;
    const Shape shape = i % 2 ? Shape{3, 7 + i} : Shape{1 + 50 * i};
    l.p.push_back(randn_seeded(shape, seed + 4 * i, dt));
    if (state) {
      l.a.push_back(mul(randn_seeded(shape, seed + 4 * i + 1, dt), scalar_like(l.p.back(), 0.1)));
      l.b.push_back(abs(randn_seeded(shape, seed + 4 * i + 2, dt)));
    }
  }
  return l;
}

std::vector<Tensor> to_dev(const std::vector<Tensor>& v, Device d) {
  std::vector<Tensor> out;
  for (const Tensor& t : v) out.push_back(t.defined() ? t.to(d).contiguous() : t);
  return out;
}

std::vector<Tensor> grads_for(const std::vector<Tensor>& p, uint64_t seed) {
  std::vector<Tensor> g;
  for (size_t i = 0; i < p.size(); ++i)
    g.push_back(randn_seeded(p[i].shape(), seed + i, p[i].dtype()));
  return g;
}

void expect_lists_close(const std::vector<Tensor>& dev, const std::vector<Tensor>& cpu,
                        const char* what) {
  ASSERT_EQ(dev.size(), cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    const bool f64 = cpu[i].dtype() == DType::f64;
    EXPECT_CLOSE(dev[i].to(Device::cpu()), cpu[i], f64 ? 1e-13 : 2e-6, f64 ? 1e-14 : 1e-6)
        << what << " " << i;
  }
}

TEST(BackendOptim, AdamWStepsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (bool maximize : {false, true}) {
    Lists c = make_lists(37, 10, true);  // more than one launch's worth of tensors
    std::vector<Tensor> dp = to_dev(c.p, kCuda), da = to_dev(c.a, kCuda), db = to_dev(c.b, kCuda);
    for (int64_t step = 1; step <= 4; ++step) {
      const std::vector<Tensor> g = grads_for(c.p, 100 * step);
      adamw_step(c.p, g, c.a, c.b, step, 1e-2, 0.9, 0.999, 1e-8, 0.05, maximize);
      adamw_step(dp, to_dev(g, kCuda), da, db, step, 1e-2, 0.9, 0.999, 1e-8, 0.05, maximize);
    }
    expect_lists_close(dp, c.p, "param");
    expect_lists_close(da, c.a, "exp_avg");
    expect_lists_close(db, c.b, "exp_avg_sq");
  }
}

TEST(BackendOptim, SgdStepsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  struct Case {
    double momentum, dampening, wd;
    bool nesterov, maximize;
  };
  for (const Case& k : {Case{0, 0, 0, false, false}, Case{0, 0, 0.01, false, true},
                        Case{0.9, 0, 0.01, false, false}, Case{0.9, 0.1, 0, false, false},
                        Case{0.8, 0, 0.001, true, true}}) {
    SCOPED_TRACE(::testing::Message() << "momentum " << k.momentum << " dampening " << k.dampening
                                      << " wd " << k.wd << " nesterov " << k.nesterov);
    Lists c = make_lists(35, 20, false);
    std::vector<Tensor> dp = to_dev(c.p, kCuda);
    std::vector<Tensor> bc, bd;  // empty: created by the first step
    for (int step = 1; step <= 3; ++step) {
      const std::vector<Tensor> g = grads_for(c.p, 300 * step);
      sgd_step(c.p, g, bc, 0.05, k.momentum, k.dampening, k.wd, k.nesterov, k.maximize);
      sgd_step(dp, to_dev(g, kCuda), bd, 0.05, k.momentum, k.dampening, k.wd, k.nesterov,
               k.maximize);
    }
    expect_lists_close(dp, c.p, "param");
    if (k.momentum != 0) expect_lists_close(bd, bc, "momentum buffer");
  }
}

TEST(BackendOptim, UnsupportedDtypeNamesTheOp) {
  IRIS_REQUIRE_CUDA();
  std::vector<Tensor> p = {randn_seeded({3}, 1, DType::f32).to(DType::bf16).to(kCuda)};
  std::vector<Tensor> g = {randn_seeded({3}, 2, DType::f32).to(DType::bf16).to(kCuda)};
  std::vector<Tensor> bufs;
  EXPECT_IRIS_ERROR(sgd_step(p, g, bufs, 0.1), "sgd");
}

}  // namespace
}  // namespace iris
