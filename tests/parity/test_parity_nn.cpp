// nn/ layers against torch.nn modules (cases in tests/parity/cases_nn.py): the torch
// module's state_dict() arrives as inputs "w.<name>", is loaded into the iris module by
// name, and outputs plus the gradients of the inputs and of every parameter are compared.
// Also the checkpoint round trip iris -> torch -> iris.
#include <unistd.h>

#include <cstdio>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tests/support/parity.h"

namespace iris::testing {
namespace {

using namespace iris::nn;
using ModuleFn = std::function<std::vector<Tensor>(const ParityCase&)>;

::testing::AssertionResult module_parity(const ParityCase& c, Module& m, const ModuleFn& fn,
                                         double rtol = 1e-4, double atol = 1e-5) {
  c.reset_inputs();
  std::map<std::string, Tensor> weights;
  for (const auto& [name, t] : m.state_dict()) {
    if (!c.has_in("w." + name))
      return ::testing::AssertionFailure() << "torch has no tensor '" << name << "'";
    weights[name] = c.in("w." + name).detach();
  }
  if (static_cast<int64_t>(weights.size()) != c.attr_int("weights"))
    return ::testing::AssertionFailure()
           << "iris has " << weights.size() << " tensors, torch " << c.attr("weights");
  try {
    load_state_dict(m, weights, /*strict=*/true, "", c.name());
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << e.what();
  }
  m.zero_grad();
  std::vector<Tensor> outs;
  try {
    outs = fn(c);
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << "iris threw: " << e.what();
  }
  if (static_cast<int>(outs.size()) != c.outputs())
    return ::testing::AssertionFailure() << outs.size() << " outputs, torch has " << c.outputs();
  Tensor total;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string key = "out." + std::to_string(i);
    const Tensor expect = c.expected(key);
    auto r = all_close(outs[i].to(expect.dtype()), expect, rtol, atol);
    if (!r) return r << " (" << key << ")";
    const std::string pkey = "proj." + std::to_string(i);
    if (c.has(pkey) && outs[i].requires_grad()) {
      const Tensor term = sum(outs[i] * c.expected(pkey));
      total = total.defined() ? total + term : term;
    }
  }
  if (!total.defined()) return ::testing::AssertionSuccess();
  total.backward();
  size_t param_grads = 0;
  for (const std::string& name : c.grad_names()) {
    const bool is_weight = name.rfind("w.", 0) == 0;
    const Tensor g = is_weight ? m.find(name.substr(2)).grad() : c.in(name).grad();
    if (!g.defined()) return ::testing::AssertionFailure() << "no iris gradient for " << name;
    auto r = all_close(g.to(DType::f64), c.expected("grad." + name).to(DType::f64), rtol, atol);
    if (!r) return r << " (grad." << name << ")";
    param_grads += is_weight;
  }
  if (param_grads != m.parameters().size())
    return ::testing::AssertionFailure() << param_grads << " parameter gradients from torch for "
                                         << m.parameters().size() << " iris parameters";
  return ::testing::AssertionSuccess();
}

#define EXPECT_MODULE_PARITY(c, m, ...) \
  EXPECT_TRUE(module_parity(*(c), (m), __VA_ARGS__)) << "case " << (c)->name()

TEST(ParityNn, Linear) {
  for (const ParityCase* c : parity_cases("nn", "linear")) {
    Linear m(c->attr_int("in"), c->attr_int("out"));
    EXPECT_MODULE_PARITY(
        c, m, [&](const ParityCase& c) { return std::vector<Tensor>{m.forward(c.in("x"))}; });
  }
}

TEST(ParityNn, Conv2dBatchNorm2d) {
  Sequential m({std::make_shared<Conv2d>(
                    3, 4, 3, Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}, .bias = false}),
                std::make_shared<BatchNorm2d>(4)});
  const auto& bn = m.at<BatchNorm2d>(1);
  for (const ParityCase* c : parity_cases("nn", "conv_bn_train")) {
    m.train();
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      const Tensor y = m.forward(c.in("x"));
      return std::vector<Tensor>{y, bn.running_mean, bn.running_var, bn.num_batches_tracked};
    });
  }
  for (const ParityCase* c : parity_cases("nn", "conv_bn_eval")) {
    m.eval();
    EXPECT_MODULE_PARITY(
        c, m, [&](const ParityCase& c) { return std::vector<Tensor>{m.forward(c.in("x"))}; });
  }
}

TEST(ParityNn, LayerNorm) {
  for (const ParityCase* c : parity_cases("nn", "layer_norm")) {
    LayerNorm m(c->attr_int("d"));
    EXPECT_MODULE_PARITY(
        c, m, [&](const ParityCase& c) { return std::vector<Tensor>{m.forward(c.in("x"))}; });
  }
}

TEST(ParityNn, MultiheadAttention) {
  for (const ParityCase* c : parity_cases("nn", "mha_self_causal")) {
    MultiheadAttention m(c->attr_int("E"), c->attr_int("H"));
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      const Tensor x = c.in("x");
      return std::vector<Tensor>{m.forward(x, x, x, {.causal = true}).output};
    });
  }
  for (const ParityCase* c : parity_cases("nn", "mha_cross_")) {
    MultiheadAttention m(c->attr_int("E"), c->attr_int("H"));
    const bool weights = c->name() == "mha_cross_weights";
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      MhaOptions opt;
      opt.key_padding_mask = c.in("kpm");
      opt.need_weights = weights;
      const MhaOutput o = m.forward(c.in("q"), c.in("mem"), c.in("mem"), opt);
      if (weights) return std::vector<Tensor>{o.output, o.weights};
      return std::vector<Tensor>{o.output};
    });
  }
}

TEST(ParityNn, TransformerBlock) {
  for (const ParityCase* c : parity_cases("nn", "block_")) {
    const bool cross = c->attr_int("cross") != 0;
    TransformerBlock m(c->attr_int("d"), c->attr_int("h"), c->attr_int("mlp"), cross, cross);
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      return std::vector<Tensor>{m.forward(c.in("x"), cross ? c.in("mem") : Tensor())};
    });
  }
}

TEST(ParityNn, Recurrent) {
  for (const ParityCase* c : parity_cases("nn", "lstm_cell")) {
    LSTMCell m(c->attr_int("in"), c->attr_int("hidden"));
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      const LstmState s = m.forward(c.in("x"), {c.in("h"), c.in("c")});
      return std::vector<Tensor>{s.h, s.c};
    });
  }
  for (const ParityCase* c : parity_cases("nn", "lstm_lengths")) {
    LSTM m(c->attr_int("in"), c->attr_int("hidden"),
           RnnOptions{.num_layers = c->attr_int("layers"), .batch_first = true});
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      const LstmOutput o = m.forward(c.in("x"), {c.in("h0"), c.in("c0")}, c.in("lengths"));
      return std::vector<Tensor>{o.output, o.h_n, o.c_n};
    });
  }
  for (const ParityCase* c : parity_cases("nn", "gru_lengths")) {
    GRU m(c->attr_int("in"), c->attr_int("hidden"),
          RnnOptions{.num_layers = c->attr_int("layers")});
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      const GruOutput o = m.forward(c.in("x"), c.in("h0"), c.in("lengths"));
      return std::vector<Tensor>{o.output, o.h_n};
    });
  }
  for (const ParityCase* c : parity_cases("nn", "gru_cell")) {
    GRUCell m(c->attr_int("in"), c->attr_int("hidden"));
    EXPECT_MODULE_PARITY(c, m, [&](const ParityCase& c) {
      return std::vector<Tensor>{m.forward(c.in("x"), c.in("h"))};
    });
  }
}

// iris writes a Block checkpoint; torch loads it strictly, runs it and writes its own
// state_dict back; iris loads that strictly and gets its weights and outputs back.
TEST(ParityNn, CheckpointRoundTripThroughTorch) {
  const std::string base = "/tmp/iris-nn-roundtrip-" + std::to_string(::getpid());
  const std::string to_torch = base + "-iris.safetensors", from_torch = base + "-torch.safetensors";
  Generator g(3);
  TransformerBlock block(8, 2, 12, true, true, &g);
  {
    NoGradGuard ng;
    for (const Tensor& p : block.parameters())
      copy_(p, randn(p.shape(), DType::f32, Device::cpu(), &g) * 0.3);
  }
  const Tensor x = randn({2, 5, 8}), mem = randn({2, 4, 8});
  auto entries = block.state_dict();
  entries.emplace_back("x", x);
  entries.emplace_back("mem", mem);
  entries.emplace_back("cfg.d", Tensor::scalar(8, DType::i64));
  entries.emplace_back("cfg.h", Tensor::scalar(2, DType::i64));
  entries.emplace_back("cfg.mlp", Tensor::scalar(12, DType::i64));
  save_safetensors(to_torch, entries);
  const int rc =
      run_python(source_dir() + "/tests/parity/cases_nn.py", {"roundtrip", to_torch, from_torch});
  ASSERT_EQ(rc, 0);
  const Safetensors back = load_safetensors(from_torch);
  EXPECT_EQ(back.metadata.at("writer"), "torch");
  TransformerBlock fresh(8, 2, 12, true, true);
  std::map<std::string, Tensor> weights = back.tensors;
  weights.erase("out");
  const LoadReport r = load_state_dict(fresh, weights, /*strict=*/true, "", from_torch);
  EXPECT_TRUE(r.complete());
  const auto a = block.state_dict(), b = fresh.state_dict();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(all_close(a[i].second, b[i].second, 0, 0)) << a[i].first;
  EXPECT_CLOSE(fresh.forward(x, mem), back.at("out"), 1e-4, 1e-5);
  std::remove(to_torch.c_str());
  std::remove(from_torch.c_str());
}

}  // namespace
}  // namespace iris::testing
