// Optimizers, clipping and LR schedules against values printed by torch 1.13 (the
// scripts are in the comments), gradient accumulation, parameter groups, state
// round trips and bad hyper-parameters.
#include <cmath>

#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

// a = sin(i), i < 5; b[r][c] = cos(0.3 c) + 0.1 (3 r + c); step t sets
// a.grad = cos(0.7 i + t), b.grad = sin(0.5 (3 r + c) - t); three steps, float64.
struct Problem {
  Tensor a, b;
  Problem() {
    std::vector<double> av, bv;
    for (int i = 0; i < 5; ++i) av.push_back(std::sin(i));
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) bv.push_back(std::cos(0.3 * c) + 0.1 * (3 * r + c));
    a = Tensor::from_vector(av, {5}).set_requires_grad(true);
    b = Tensor::from_vector(bv, {2, 3}).set_requires_grad(true);
  }
  std::vector<ParamGroup> groups() const {
    ParamGroup g;
    g.params = {{"a", a}, {"b", b}};
    return {g};
  }
  void set_grads(int t) const {
    std::vector<double> ga, gb;
    for (int i = 0; i < 5; ++i) ga.push_back(std::cos(0.7 * i + t));
    for (int k = 0; k < 6; ++k) gb.push_back(std::sin(0.5 * k - t));
    a.set_grad(Tensor::from_vector(ga, {5}));
    b.set_grad(Tensor::from_vector(gb, {2, 3}));
  }
  void run(Optimizer& opt, int steps = 3) const {
    for (int t = 0; t < steps; ++t) {
      set_grads(t);
      opt.step();
    }
  }
  void expect(const std::vector<double>& ea, const std::vector<double>& eb) const {
    EXPECT_CLOSE(a, Tensor::from_vector(ea, {5}), 1e-13, 1e-15);
    EXPECT_CLOSE(b, Tensor::from_vector(eb, {2, 3}), 1e-13, 1e-15);
  }
};

// torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1)
TEST(AdamW, MatchesTorch) {
  Problem p;
  AdamW opt(
      p.groups(),
      AdamWOptions{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1});
  p.run(opt);
  p.expect({-0.024184905482540098, 0.8256784478550789, 0.9099240927386001, 0.16981287778191106,
            -0.7273256420785413},
           {1.0128274244882636, 1.048160455652942, 1.006361493346488, 1.2727136443541254,
            1.3235066030294818, 1.2921432532828951});
  Problem d;  // torch.optim.AdamW(p, lr=0.001): the defaults
  AdamW dflt(d.groups());
  d.run(dflt);
  d.expect({-0.002408145290447864, 0.8401235782928543, 0.9096217506020164, 0.14403837091758406,
            -0.7540688602158461},
           {1.0015736811788836, 1.0549087869528613, 1.0237206913315224, 1.2976318207823472,
            1.352527763788796, 1.3223672282708787});
}

// torch.optim.SGD(p, lr=0.1) / (lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01) /
// (lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)
TEST(SGD, MatchesTorch) {
  Problem plain;
  SGD p0(plain.groups(), SgdOptions{.lr = 0.1});
  plain.run(p0);
  plain.expect({-0.11241554693209974, 0.8682784297107062, 1.0627199033477284, 0.3490005282005078,
                -0.5922333883935654},
               {1.1750768411633579, 1.1550859877860116, 1.0253356149096784, 1.2002505013395945,
                1.1802596479622482, 1.1177963479784567});
  Problem mom;
  SGD p1(mom.groups(),
         SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  mom.run(p1);
  mom.expect({-0.32555279552743377, 0.7333756641331628, 1.0715072631748672, 0.49951586024919115,
              -0.37044291425057785},
             {1.2203443768566924, 1.0916836483880359, 0.8678666324449134, 0.9843147839073126,
              0.9581997551237265, 0.9426699683895988});
  Problem nes;
  SGD p2(nes.groups(),
         SgdOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.02, .nesterov = true});
  nes.run(p2);
  nes.expect({-0.1755372286531196, 0.8199388755198173, 1.054610550382122, 0.38786725643577846,
              -0.5242151833838196},
             {1.1771799284293358, 1.125393204271949, 0.969874323781578, 1.1286096222261393,
              1.1092688539896747, 1.0630668226025504});
}

TEST(Optimizer, StateRoundTripContinuesExactly) {
  Problem straight, resumed;
  AdamW a(straight.groups(), AdamWOptions{.lr = 0.01});
  AdamW b(resumed.groups(), AdamWOptions{.lr = 0.01});
  straight.run(a, 2);
  resumed.run(b, 2);
  std::map<std::string, Tensor> state;
  for (const auto& [k, v] : b.state_dict()) state[k] = v.clone();
  Problem fresh;  // a new optimizer over tensors holding the same values
  {
    NoGradGuard ng;
    copy_(fresh.a, resumed.a);
    copy_(fresh.b, resumed.b);
  }
  AdamW c(fresh.groups(), AdamWOptions{.lr = 0.5});
  c.load_state_dict(state);
  EXPECT_EQ(c.lr(), 0.01);
  straight.set_grads(2);
  a.step();
  fresh.set_grads(2);
  c.step();
  EXPECT_CLOSE(fresh.a, straight.a, 0, 0);
  EXPECT_CLOSE(fresh.b, straight.b, 0, 0);
  EXPECT_EQ(state.count("a.exp_avg_sq"), 1u);
  EXPECT_EQ(state.at("b.step").item(), 2.0);
  // Bad state changes nothing and names the tensor.
  auto bad = state;
  bad["a.exp_avg"] = zeros({4}, DType::f64);
  EXPECT_IRIS_ERROR(c.load_state_dict(bad), "'a.exp_avg'");
  bad = state;
  bad["c.exp_avg"] = zeros({4}, DType::f64);
  EXPECT_IRIS_ERROR(c.load_state_dict(bad), "unexpected tensor 'c.exp_avg'");
  bad = state;
  bad.erase("b.exp_avg_sq");
  EXPECT_IRIS_ERROR(c.load_state_dict(bad), "missing tensor 'b.exp_avg_sq'");
  bad = state;
  bad.erase("group.0.lr");
  EXPECT_IRIS_ERROR(c.load_state_dict(bad), "missing tensor 'group.0.lr'");
}

TEST(Optimizer, SkipsParametersWithoutGradientAndHonoursGroups) {
  Problem p;
  ParamGroup g0, g1;
  g0.params = {{"a", p.a}};
  g1.params = {{"b", p.b}};
  g1.lr = 0.0;
  g1.weight_decay = 0.0;
  AdamW opt({g0, g1}, AdamWOptions{.lr = 0.1});
  EXPECT_EQ(opt.num_groups(), 2u);
  const Tensor b0 = p.b.clone();
  p.set_grads(0);
  p.a.set_grad(Tensor());
  const Tensor a0 = p.a.clone();
  opt.step();
  EXPECT_CLOSE(p.a, a0, 0, 0);  // no gradient: untouched, no state
  EXPECT_CLOSE(p.b, b0, 0, 0);  // lr 0 in its group
  std::map<std::string, Tensor> sd;
  for (const auto& [k, v] : opt.state_dict()) sd[k] = v;
  EXPECT_EQ(sd.count("a.step"), 0u);
  EXPECT_EQ(sd.at("b.step").item(), 1.0);
  EXPECT_EQ(sd.at("group.1.weight_decay").item(), 0.0);
  opt.zero_grad();
  EXPECT_FALSE(p.b.grad().defined());
}

TEST(Optimizer, GradientAccumulationEqualsOneBigBatch) {
  Generator g1(3), g2(3);
  Linear accum(4, 2, true, &g1), big(4, 2, true, &g2);
  SGD oa(accum, SgdOptions{.lr = 0.1, .momentum = 0.9});
  SGD ob(big, SgdOptions{.lr = 0.1, .momentum = 0.9});
  const Tensor x = randn({6, 4}), y = randn({6, 2});
  for (int step = 0; step < 3; ++step) {
    // Two half-batches, each loss scaled by its share, backward twice, then one step.
    for (int half = 0; half < 2; ++half) {
      const Tensor xs = x.narrow(0, 3 * half, 3), ys = y.narrow(0, 3 * half, 3);
      (sum(square(accum.forward(xs) - ys)) / 6.0).backward();
    }
    oa.step();
    oa.zero_grad();
    (sum(square(big.forward(x) - y)) / 6.0).backward();
    ob.step();
    ob.zero_grad();
  }
  EXPECT_CLOSE(accum.weight, big.weight, 1e-6, 1e-7);
  EXPECT_CLOSE(accum.bias, big.bias, 1e-6, 1e-7);
}

// torch.nn.utils.clip_grad_norm_([a, b], 5.0) and (..., 2.0, norm_type=inf), float32.
TEST(ClipGradNorm, MatchesTorch) {
  const Tensor a = zeros({4}).set_requires_grad(true), b = zeros({2, 3}).set_requires_grad(true);
  auto set = [&] {
    a.set_grad(Tensor::from_vector<float>({3.0f, -4.0f, 1.5f, 0.25f}, {4}));
    b.set_grad(Tensor::from_vector<float>({1.0f, 2.0f, -2.0f, 0.5f, -0.5f, 7.0f}, {2, 3}));
  };
  set();
  EXPECT_NEAR(clip_grad_norm_({a, b}, 5.0), 9.263504028320312, 1e-6);
  EXPECT_CLOSE(
      a.grad(),
      Tensor::from_vector<double>(
          {1.6192574501037598, -2.1590099334716797, 0.8096287250518799, 0.13493812084197998}, {4}),
      2e-7, 1e-7);
  EXPECT_CLOSE(
      b.grad().reshape({6}),
      Tensor::from_vector<double>({0.5397524833679199, 1.0795049667358398, -1.0795049667358398,
                                   0.26987624168395996, -0.26987624168395996, 3.7782673835754395},
                                  {6}),
      2e-7, 1e-7);
  set();
  EXPECT_EQ(clip_grad_norm_({a, b}, 2.0, INFINITY), 7.0);
  EXPECT_CLOSE(
      b.grad().reshape({6}),
      Tensor::from_vector<double>({0.2857142388820648, 0.5714284777641296, -0.5714284777641296,
                                   0.1428571194410324, -0.1428571194410324, 1.9999996423721313},
                                  {6}),
      2e-7, 1e-7);
  set();
  EXPECT_NEAR(clip_grad_norm_({a, b}, 100.0), 9.263504028320312, 1e-6);
  EXPECT_CLOSE(a.grad(), Tensor::from_vector<float>({3.0f, -4.0f, 1.5f, 0.25f}, {4}), 0, 0);
  EXPECT_EQ(clip_grad_norm_({zeros({2})}, 1.0), 0.0);  // no gradients
  a.set_grad(Tensor::from_vector<float>({NAN, 0, 0, 0}, {4}));
  EXPECT_IRIS_ERROR(clip_grad_norm_({a, b}, 1.0, 2.0, true), "non-finite");
  EXPECT_IRIS_ERROR(clip_grad_norm_({a}, 1.0, 0.0), "norm_type");
}

// LambdaLR(opt, get_cosine_schedule_with_warmup's lambda) with lr 0.3, printed per step.
TEST(Schedules, CosineWarmupMatchesTorch) {
  Problem p;
  SGD opt(p.groups(), SgdOptions{.lr = 0.3});
  CosineWarmupSchedule s(opt, 3, 10);
  const std::vector<double> torch = {0.0,
                                     0.09999999999999999,
                                     0.19999999999999998,
                                     0.3,
                                     0.28514533018536287,
                                     0.24352347027881002,
                                     0.18337814009344713,
                                     0.11662185990655284,
                                     0.05647652972118997,
                                     0.014854669814637143,
                                     0.0};
  for (size_t i = 0; i < torch.size(); ++i) {
    EXPECT_NEAR(opt.lr(), torch[i], 1e-15) << "step " << i;
    s.step();
  }
  EXPECT_EQ(opt.lr(), 0.0);  // stays at the floor after total_steps
  SGD opt2(p.groups(), SgdOptions{.lr = 0.3});
  CosineWarmupSchedule m(opt2, 4, 12, 0.1);
  const std::vector<double> torch_min = {0.0,
                                         0.075,
                                         0.15,
                                         0.22499999999999998,
                                         0.3,
                                         0.2897237368890237,
                                         0.2604594154601839,
                                         0.2166622633692871,
                                         0.165,
                                         0.11333773663071288,
                                         0.0695405845398161,
                                         0.04027626311097629,
                                         0.03};
  for (size_t i = 0; i < torch_min.size(); ++i) {
    EXPECT_NEAR(opt2.lr(), torch_min[i], 1e-15) << "step " << i;
    m.step();
  }
  EXPECT_NEAR(m.lr_at(100), 0.03, 1e-15);
  EXPECT_IRIS_ERROR(CosineWarmupSchedule(opt, 5, 3), "warmup_steps");
}

// StepLR(opt, 3, 0.5) with lr 0.3; and groups scale from their own initial lr.
TEST(Schedules, StepMatchesTorchPerGroup) {
  Problem p;
  ParamGroup g0, g1;
  g0.params = {{"a", p.a}};
  g1.params = {{"b", p.b}};
  g1.lr = 0.6;
  SGD opt({g0, g1}, SgdOptions{.lr = 0.3});
  StepSchedule s(opt, 3, 0.5);
  const std::vector<double> torch = {0.3, 0.3, 0.3, 0.15, 0.15, 0.15, 0.075, 0.075, 0.075, 0.0375};
  for (size_t i = 0; i < torch.size(); ++i) {
    EXPECT_NEAR(opt.lr(0), torch[i], 1e-15) << "step " << i;
    EXPECT_NEAR(opt.lr(1), 2 * torch[i], 1e-15) << "step " << i;
    s.step();
  }
  s.set_last_step(3);
  EXPECT_EQ(opt.lr(0), 0.15);
  EXPECT_IRIS_ERROR(StepSchedule(opt, 0), "step_size");
}

TEST(Optimizer, BadHyperParameters) {
  Problem p;
  EXPECT_IRIS_ERROR(AdamW(p.groups(), AdamWOptions{.lr = -1}), "invalid learning rate");
  EXPECT_IRIS_ERROR(AdamW(p.groups(), AdamWOptions{.beta1 = 1.0}), "invalid betas");
  EXPECT_IRIS_ERROR(SGD(p.groups(), SgdOptions{.nesterov = true}), "nesterov");
  EXPECT_IRIS_ERROR(SGD(p.groups(), SgdOptions{.momentum = -0.5}), "invalid momentum");
  ParamGroup twice;
  twice.params = {{"a", p.a}, {"a2", p.a}};
  EXPECT_IRIS_ERROR(SGD({twice}), "more than one place");
  AdamW opt(p.groups());
  EXPECT_IRIS_ERROR(opt.set_lr(3, 0.1), "no parameter group 3");
  // State built for float64 parameters does not fit after a conversion to float32.
  p.set_grads(0);
  opt.step();
  Linear lin(2, 2);
  AdamW lo(lin);
  sum(lin.forward(randn({1, 2}))).backward();
  lo.step();
  lin.to(DType::f64);
  sum(lin.forward(randn({1, 2}, DType::f64))).backward();
  EXPECT_IRIS_ERROR(lo.step(), "adamw_step");
}

}  // namespace
}  // namespace iris::nn
