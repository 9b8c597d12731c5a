// Module: registration, PyTorch names and order, modes, gradients, conversion, summary.
#include "nn/layers.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

std::vector<std::string> names_of(const std::vector<NamedTensor>& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}

// torch_ref.py's ViT, built from iris layers (the models/ version lives elsewhere).
class TinyViT : public Module {
 public:
  TinyViT(int64_t img, int64_t p, int64_t d, int64_t depth, int64_t heads, int64_t mlp)
      : Module("ViT") {
    patch = register_module("patch", std::make_shared<PatchEmbedding>(3, d, p));
    const int64_t n = (img / p) * (img / p);
    cls = register_parameter("cls", zeros({1, 1, d}));
    pos = register_parameter("pos", randn({1, n + 1, d}) * 0.02);
    blocks = register_module("blocks", std::make_shared<ModuleList>());
    for (int64_t i = 0; i < depth; ++i)
      blocks->push_back(std::make_shared<TransformerBlock>(d, heads, mlp));
    ln = register_module("ln", std::make_shared<LayerNorm>(d));
  }
  Tensor forward(const Tensor& img) override {
    Tensor x = patch->forward(img);
    x = cat({cls.expand({x.size(0), -1, -1}), x}, 1) + pos;
    for (const auto& b : *blocks) x = b->forward(x);
    return ln->forward(x);
  }
  std::shared_ptr<PatchEmbedding> patch;
  Tensor cls, pos;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<LayerNorm> ln;
};

TEST(Module, BlockStateDictMatchesTorch) {
  TransformerBlock b(8, 2, 16, /*cross=*/true, /*causal=*/true);
  // Printed by torch for torch_ref.Block(8, 2, 16, cross=True, causal=True).state_dict().
  const std::vector<std::pair<std::string, Shape>> expected = {{"ln1.weight", {8}},
                                                               {"ln1.bias", {8}},
                                                               {"attn.in_proj_weight", {24, 8}},
                                                               {"attn.in_proj_bias", {24}},
                                                               {"attn.out_proj.weight", {8, 8}},
                                                               {"attn.out_proj.bias", {8}},
                                                               {"lnx.weight", {8}},
                                                               {"lnx.bias", {8}},
                                                               {"xattn.in_proj_weight", {24, 8}},
                                                               {"xattn.in_proj_bias", {24}},
                                                               {"xattn.out_proj.weight", {8, 8}},
                                                               {"xattn.out_proj.bias", {8}},
                                                               {"ln2.weight", {8}},
                                                               {"ln2.bias", {8}},
                                                               {"mlp.0.weight", {16, 8}},
                                                               {"mlp.0.bias", {16}},
                                                               {"mlp.2.weight", {8, 16}},
                                                               {"mlp.2.bias", {8}}};
  const auto sd = b.state_dict();
  ASSERT_EQ(sd.size(), expected.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(sd[i].first, expected[i].first);
    EXPECT_EQ(sd[i].second.shape(), expected[i].second) << sd[i].first;
  }
  EXPECT_EQ(names_of(b.named_parameters()), names_of(sd));
}

TEST(Module, VitStateDictMatchesTorch) {
  TinyViT vit(16, 8, 8, 2, 2, 16);
  // Printed by torch for torch_ref.ViT(16, 8, 8, 2, 2, 16).state_dict().keys().
  const std::vector<std::string> expected = {"cls",
                                             "pos",
                                             "patch.weight",
                                             "patch.bias",
                                             "blocks.0.ln1.weight",
                                             "blocks.0.ln1.bias",
                                             "blocks.0.attn.in_proj_weight",
                                             "blocks.0.attn.in_proj_bias",
                                             "blocks.0.attn.out_proj.weight",
                                             "blocks.0.attn.out_proj.bias",
                                             "blocks.0.ln2.weight",
                                             "blocks.0.ln2.bias",
                                             "blocks.0.mlp.0.weight",
                                             "blocks.0.mlp.0.bias",
                                             "blocks.0.mlp.2.weight",
                                             "blocks.0.mlp.2.bias",
                                             "blocks.1.ln1.weight",
                                             "blocks.1.ln1.bias",
                                             "blocks.1.attn.in_proj_weight",
                                             "blocks.1.attn.in_proj_bias",
                                             "blocks.1.attn.out_proj.weight",
                                             "blocks.1.attn.out_proj.bias",
                                             "blocks.1.ln2.weight",
                                             "blocks.1.ln2.bias",
                                             "blocks.1.mlp.0.weight",
                                             "blocks.1.mlp.0.bias",
                                             "blocks.1.mlp.2.weight",
                                             "blocks.1.mlp.2.bias",
                                             "ln.weight",
                                             "ln.bias"};
  EXPECT_EQ(names_of(vit.state_dict()), expected);
  EXPECT_EQ(vit.find("patch.weight").shape(), (Shape{8, 3, 8, 8}));
  EXPECT_EQ(vit.find("pos").shape(), (Shape{1, 5, 8}));
  const Tensor y = vit.forward(randn({2, 3, 16, 16}));
  EXPECT_EQ(y.shape(), (Shape{2, 5, 8}));
}

// torch_ref.CnnRnnCaptioner's first stage: Sequential with BatchNorm buffers in between.
TEST(Module, SequentialWithBatchNormBuffersMatchesTorch) {
  Sequential cnn;
  cnn.push_back(std::make_shared<Conv2d>(
                    3, 4, 3, Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}, .bias = false}))
      .push_back(std::make_shared<BatchNorm2d>(4))
      .push_back(std::make_shared<ReLU>())
      .push_back(std::make_shared<Conv2d>(4, 4, 3, Conv2dOptions{.padding = {1, 1}, .bias = false}))
      .push_back(std::make_shared<BatchNorm2d>(4))
      .push_back(std::make_shared<ReLU>());
  const std::vector<std::string> expected = {
      "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
      "3.weight", "4.weight", "4.bias", "4.running_mean", "4.running_var", "4.num_batches_tracked"};
  const auto sd = cnn.state_dict();
  EXPECT_EQ(names_of(sd), expected);
  EXPECT_EQ(sd[5].second.dtype(), DType::i64);
  EXPECT_EQ(sd[5].second.dim(), 0);
  // Buffers are not parameters.
  EXPECT_EQ(names_of(cnn.named_parameters()),
            (std::vector<std::string>{"0.weight", "1.weight", "1.bias", "3.weight", "4.weight",
                                      "4.bias"}));
  EXPECT_EQ(cnn.named_buffers().size(), 6u);
  EXPECT_EQ(cnn.parameter_count(), 4 * 3 * 9 + 4 + 4 + 4 * 4 * 9 + 4 + 4);
  const Tensor y = cnn.forward(randn({2, 3, 9, 7}));
  EXPECT_EQ(y.shape(), (Shape{2, 4, 5, 4}));
  EXPECT_EQ(cnn.find("1.num_batches_tracked").item(), 1.0);
}

TEST(Module, TrainEvalIsRecursive) {
  TransformerBlock b(8, 2, 16);
  EXPECT_TRUE(b.is_training());
  b.eval();
  for (const auto& [name, m] : b.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  b.train();
  for (const auto& [name, m] : b.named_modules()) EXPECT_TRUE(m->is_training()) << name;
  EXPECT_EQ(b.named_modules().size(),
            1u + 1 + 2 + 1 + 4);  // self, ln1, attn(+out_proj), ln2, mlp(+3)
}

TEST(Module, ZeroGradAndCounts) {
  Linear lin(5, 3);
  EXPECT_EQ(lin.parameter_count(), 18);
  sum(lin.forward(randn({4, 5}))).backward();
  ASSERT_TRUE(lin.weight.grad().defined());
  lin.zero_grad(/*set_to_none=*/false);
  EXPECT_EQ(sum(abs(lin.weight.grad())).item(), 0.0);
  lin.zero_grad();
  EXPECT_FALSE(lin.weight.grad().defined());
  lin.bias.set_requires_grad(false);
  EXPECT_EQ(lin.parameter_count(/*trainable_only=*/true), 15);
}

TEST(Module, TiedParameterListedOnce) {
  // The same tensor under two names (weight tying): one parameter, two state_dict entries.
  struct Shared : Module {
    explicit Shared(const Tensor& w) : Module("Shared") {
      register_parameter("a", w);
      register_parameter("b", w);
    }
  };
  Shared s(zeros({2}));
  EXPECT_EQ(s.named_parameters().size(), 1u);
  EXPECT_EQ(s.state_dict().size(), 2u);
}

TEST(Module, ToDtypeConvertsInPlace) {
  Linear lin(4, 3);
  BatchNorm2d bn(3);
  const Tensor w = lin.weight;
  const std::vector<float> before = w.to_vector<float>();
  sum(lin.forward(randn({2, 4}))).backward();
  lin.to(DType::f64);
  EXPECT_EQ(w.dtype(), DType::f64);  // the same handle, converted
  EXPECT_TRUE(w.is_same(lin.find("weight")));
  EXPECT_EQ(lin.weight.grad().dtype(), DType::f64);
  const std::vector<double> after = w.to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], static_cast<double>(before[i]));
  EXPECT_TRUE(w.requires_grad() && w.is_leaf());
  lin.zero_grad();
  sum(lin.forward(randn({2, 4}, DType::f64))).backward();
  EXPECT_EQ(lin.weight.grad().dtype(), DType::f64);
  bn.to(DType::f64);
  EXPECT_EQ(bn.running_mean.dtype(), DType::f64);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::i64);  // integer buffers stay
  lin.to(Device::cpu());
  EXPECT_TRUE(w.device().is_cpu());
}

TEST(Module, SummaryListsEveryTensor) {
  TransformerBlock b(8, 2, 16);
  const std::string s = b.summary();
  EXPECT_NE(s.find("TransformerBlock(dim=8"), std::string::npos) << s;
  EXPECT_NE(s.find("attn.in_proj_weight"), std::string::npos) << s;
  EXPECT_NE(s.find("[24, 8]"), std::string::npos) << s;
  EXPECT_NE(s.find("total: " + std::to_string(b.parameter_count())), std::string::npos) << s;
  BatchNorm2d bn(2);
  EXPECT_NE(bn.summary().find("num_batches_tracked (buffer)"), std::string::npos);
}

TEST(Module, RegistrationErrors) {
  struct M : Module {
    M() : Module("M") {}
  } m;
  m.register_parameter("w", zeros({2}));
  EXPECT_IRIS_ERROR(m.register_parameter("w", zeros({2})), "already registered");
  EXPECT_IRIS_ERROR(m.register_buffer("a.b", zeros({2})), "no '.'");
  EXPECT_IRIS_ERROR(m.register_parameter("i", zeros({2}, DType::i64)), "floating-point");
  const Tensor leaf = zeros({2}).set_requires_grad(true);
  EXPECT_IRIS_ERROR(m.register_parameter("op", leaf * 2.0), "leaf");
  EXPECT_IRIS_ERROR(m.forward(zeros({2})), "no single-tensor forward");
  EXPECT_IRIS_ERROR(m.find("nope"), "no parameter or buffer named 'nope'");
  EXPECT_IRIS_ERROR(m.child("c"), "no child module named 'c'");
  ModuleList list;
  list.push_back(std::make_shared<ReLU>());
  EXPECT_IRIS_ERROR(list.at<Linear>(0), "not the type asked for");
  EXPECT_IRIS_ERROR(list.at<ReLU>(3), "out of range");
  Linear lin(4, 3);
  EXPECT_IRIS_ERROR(lin.forward(zeros({2, 5})), "Linear(in_features=4");
}

TEST(Module, SequentialChains) {
  Generator g(7);
  auto l1 = std::make_shared<Linear>(5, 7, true, &g);
  auto l2 = std::make_shared<Linear>(7, 2, true, &g);
  Sequential seq({l1, std::make_shared<Tanh>(), l2});
  const Tensor x = randn({3, 5});
  EXPECT_CLOSE(seq.forward(x), linear(tanh(linear(x, l1->weight, l1->bias)), l2->weight, l2->bias),
               0, 0);
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq.at<Linear>(2).out_features, 2);
}

}  // namespace
}  // namespace iris::nn
