// ViT, ViTCaptioner and CnnRnnCaptioner: torch_ref's parameter names and counts, output
// shapes, the exposed attention maps (cross-attention per layer, attention per step),
// causality of the decoders, float64 gradchecks of tiny models (image and parameters), and
// bad inputs. Numerics against PyTorch itself: tests/parity/test_parity_models.cpp.
#include <cmath>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "models/vit.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

ViTCaptionerConfig tiny_vit_cap() {
  ViTCaptionerConfig c;
  c.image_size = 16;
  c.patch = 4;
  c.dim = 12;
  c.encoder_depth = 1;
  c.decoder_depth = 2;
  c.heads = 3;
  c.mlp_dim = 16;
  c.vocab = 11;
  c.max_len = 6;
  return c;
}

CnnRnnConfig tiny_cnn_rnn() {
  CnnRnnConfig c;
  c.vocab = 9;
  c.emb = 5;
  c.hidden = 7;
  c.channels = {4, 6};
  return c;
}

Tensor tokens_of(const std::vector<int64_t>& ids, int64_t B, int64_t T) {
  return Tensor::from_vector(ids, {B, T});
}

Tensor random_tokens(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::vector<int64_t> ids(B * T);
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int64_t>((i * 7 + seed * 3 + i * i) % V);
  return tokens_of(ids, B, T);
}

TEST(ViT, VitB16HasTorchRefsParameterCountAndNames) {
  ViT vit;  // defaults: torch_ref.vit_b16()
  EXPECT_EQ(vit.parameter_count(), 85798656);
  const auto sd = vit.state_dict();
  EXPECT_EQ(sd.front().first, "cls");
  EXPECT_EQ(sd[1].first, "pos");
  EXPECT_EQ(sd[1].second.shape(), (Shape{1, 197, 768}));
  EXPECT_EQ(sd[2].first, "patch.weight");
  EXPECT_EQ(sd[2].second.shape(), (Shape{768, 3, 16, 16}));
  EXPECT_EQ(sd[4].first, "blocks.0.ln1.weight");
  EXPECT_EQ(sd.back().first, "ln.bias");
}

TEST(ViT, ForwardShapesAndClassifierHead) {
  VitConfig c;
  c.image_size = 12;
  c.patch = 4;
  c.dim = 8;
  c.depth = 2;
  c.heads = 2;
  c.mlp_dim = 10;
  c.num_classes = 5;
  Generator g(3);
  ViT vit(c, &g);
  const Tensor img = randn_seeded({2, 3, 12, 12}, 1, DType::f32);
  const Tensor tokens = vit.forward(img);
  EXPECT_EQ(tokens.shape(), (Shape{2, 10, 8}));
  const Tensor logits = vit.classify(img);
  EXPECT_EQ(logits.shape(), (Shape{2, 5}));
  EXPECT_CLOSE(logits, vit.head->forward(tokens.select(1, 0)), 1e-6, 1e-6);
  EXPECT_EQ(vit.state_dict().back().first, "head.bias");
  // The class token starts at zero, the positions at N(0, 0.02^2).
  EXPECT_EQ(amax(abs(vit.cls)).item(), 0.0);
  EXPECT_LT(amax(abs(vit.pos)).item(), 0.02 * 6);
}

// The hybrid ViT: a conv stem (first stage at full resolution, then stride 2) ahead of a
// patch convolution over patch / 2 stem pixels, giving the plain ViT's token count.
TEST(ViT, ConvStemFeedsThePatchConvolution) {
  VitConfig c;
  c.image_size = 16;
  c.patch = 8;
  c.dim = 8;
  c.depth = 1;
  c.heads = 2;
  c.mlp_dim = 10;
  c.stem_channels = {3, 5};
  Generator g(4);
  ViT vit(c, &g);
  vit.train();
  EXPECT_NO_THROW(vit.find("stem.0.weight"));
  EXPECT_EQ(vit.find("stem.0.weight").shape(), (Shape{3, 3, 3, 3}));
  EXPECT_EQ(vit.find("stem.6.weight").shape(), (Shape{5, 3, 3, 3}));
  EXPECT_EQ(vit.find("patch.weight").shape(), (Shape{8, 5, 4, 4}));
  const Tensor img = randn_seeded({2, 3, 16, 16}, 2, DType::f32);
  const Tensor features = vit.stem->forward(img);
  EXPECT_EQ(features.shape(), (Shape{2, 5, 8, 8}));  // stride 1, then stride 2
  Tensor x = vit.patch->forward(features);
  x = cat({vit.cls.expand({2, 1, 8}), x}, 1) + vit.pos;
  x = vit.ln->forward(vit.block(0).forward(x));
  EXPECT_EQ(x.shape(), (Shape{2, 5, 8}));
  EXPECT_CLOSE(vit.forward(img), x, 1e-6, 1e-6);
  vit.to(DType::f64);
  Tensor in = testing::param({2, 3, 16, 16}, 13);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& t) { return std::vector<Tensor>{vit.forward(t[0])}; },
      {in, vit.find("stem.0.weight"), vit.find("stem.4.bias"), vit.find("patch.weight")});
  VitConfig odd = c;
  odd.patch = 2;
  odd.stem_channels = {3, 5, 7};  // a 4x reduction does not divide patch 2
  EXPECT_IRIS_ERROR(ViT{odd}, "multiple of 4");
  odd.patch = 8;
  odd.stem_channels = {3, 0};
  EXPECT_IRIS_ERROR(ViT{odd}, "stem channels");
}

TEST(ViTCaptioner, TorchRefDefaultsAndNames) {
  ViTCaptioner m;
  EXPECT_EQ(m.parameter_count(), 4602688);
  const auto sd = m.state_dict();
  EXPECT_EQ(sd.front().first, "pos");
  EXPECT_EQ(sd.front().second.shape(), (Shape{1, 24, 192}));
  EXPECT_EQ(sd[1].first, "enc.cls");
  EXPECT_EQ(m.find("enc.patch.weight").shape(), (Shape{192, 3, 8, 8}));
  EXPECT_EQ(m.find("dec.3.xattn.in_proj_weight").shape(), (Shape{576, 192}));
  EXPECT_EQ(m.find("dec.0.lnx.weight").shape(), (Shape{192}));
  EXPECT_EQ(m.find("tok.weight").shape(), (Shape{1024, 192}));
  EXPECT_EQ(sd.back().first, "head.bias");
  EXPECT_EQ(sd.back().second.shape(), (Shape{1024}));
}

TEST(ViTCaptioner, LogitsAndCrossAttentionMaps) {
  Generator g(5);
  ViTCaptioner m(tiny_vit_cap(), &g);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 2, DType::f32);
  const Tensor tok = random_tokens(2, 5, 11, 1);
  const ViTCaptionerOutput out = m.forward_with_attention(img, tok);
  EXPECT_EQ(out.logits.shape(), (Shape{2, 5, 11}));
  ASSERT_EQ(out.cross_attention.size(), 2u);
  for (const Tensor& a : out.cross_attention) {
    EXPECT_EQ(a.shape(), (Shape{2, 5, 17}));  // 16 patches + the class token
    EXPECT_CLOSE(sum(a, {-1}), ones({2, 5}), 1e-5, 1e-6);
    EXPECT_GE(amin(a).item(), 0.0);
  }
  EXPECT_CLOSE(out.logits, m.forward(img, tok), 1e-6, 1e-6);
}

TEST(ViTCaptioner, DecoderIsCausal) {
  Generator g(6);
  ViTCaptioner m(tiny_vit_cap(), &g);
  const Tensor img = randn_seeded({1, 3, 16, 16}, 3, DType::f32);
  const Tensor a = m.forward(img, tokens_of({1, 4, 5, 6, 7}, 1, 5));
  const Tensor b = m.forward(img, tokens_of({1, 4, 5, 9, 3}, 1, 5));
  EXPECT_CLOSE(a.narrow(1, 0, 3), b.narrow(1, 0, 3), 0, 0);
  EXPECT_GT(amax(abs(a.narrow(1, 3, 2) - b.narrow(1, 3, 2))).item(), 1e-4);
}

TEST(ViTCaptioner, GradcheckImageAndParametersFloat64) {
  Generator g(7);
  ViTCaptioner m(tiny_vit_cap(), &g);
  m.to(DType::f64);
  const Tensor tok = random_tokens(2, 3, 11, 2);
  Tensor img = testing::param({2, 3, 16, 16}, 11);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{m.forward(in[0], tok)}; },
      {img, m.pos, m.find("dec.1.xattn.in_proj_weight"), m.find("enc.patch.bias"),
       m.find("enc.cls")});
}

TEST(CnnRnnCaptioner, TorchRefDefaultsAndNames) {
  CnnRnnCaptioner m;
  EXPECT_EQ(m.parameter_count(), 4719841);
  const auto sd = m.state_dict();
  const std::vector<std::string> head = {"cnn.0.weight",      "cnn.1.weight",
                                         "cnn.1.bias",        "cnn.1.running_mean",
                                         "cnn.1.running_var", "cnn.1.num_batches_tracked",
                                         "cnn.3.weight",      "cnn.4.weight"};
  for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(sd[i].first, head[i]);
  EXPECT_EQ(m.find("cnn.21.weight").shape(), (Shape{256, 256, 3, 3}));
  EXPECT_EQ(m.find("cnn.22.num_batches_tracked").dtype(), DType::i64);
  EXPECT_EQ(m.find("cell.weight_ih").shape(), (Shape{2048, 512}));
  EXPECT_EQ(m.find("att_v.weight").shape(), (Shape{1, 512}));
  EXPECT_EQ(sd.back().first, "out.bias");
}

TEST(CnnRnnCaptioner, LogitsAndAttentionPerStep) {
  Generator g(8);
  CnnRnnCaptioner m(tiny_cnn_rnn(), &g);
  const Tensor img = randn_seeded({3, 3, 16, 16}, 4, DType::f32);
  const Tensor tok = random_tokens(3, 4, 9, 3);
  const CnnRnnOutput out = m.forward_with_attention(img, tok);
  EXPECT_EQ(out.logits.shape(), (Shape{3, 4, 9}));
  EXPECT_EQ(out.attention.shape(), (Shape{3, 4, 16}));  // 16 / 4 = 4x4 regions
  EXPECT_CLOSE(sum(out.attention, {-1}), ones({3, 4}), 1e-5, 1e-6);
  EXPECT_CLOSE(out.logits, m.forward(img, tok), 1e-6, 1e-6);
}

// The recurrence written out with plain ops, as torch_ref's forward reads.
TEST(CnnRnnCaptioner, MatchesTheReferenceRecurrence) {
  Generator g(9);
  CnnRnnCaptioner m(tiny_cnn_rnn(), &g);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 5, DType::f32);
  const Tensor tok = random_tokens(2, 3, 9, 4);
  const Tensor f = m.cnn->forward(img).flatten(2).transpose(1, 2);
  const Tensor mu = mean(f, {1});
  Tensor h = tanh(linear(mu, m.init_h->weight, m.init_h->bias));
  Tensor c = tanh(linear(mu, m.init_c->weight, m.init_c->bias));
  const Tensor pf = linear(f, m.att_f->weight, m.att_f->bias);
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < 3; ++t) {
    const Tensor e = linear(tanh(pf + linear(h, m.att_h->weight, m.att_h->bias).unsqueeze(1)),
                            m.att_v->weight, m.att_v->bias);
    const Tensor ctx = sum(softmax(e, 1) * f, {1});
    const LstmState s =
        lstm_cell(cat({embedding(m.emb->weight, tok.select(1, t)), ctx}, 1), h, c,
                  m.cell->weight_ih, m.cell->weight_hh, m.cell->bias_ih, m.cell->bias_hh);
    h = s.h;
    c = s.c;
    outs.push_back(linear(h, m.out->weight, m.out->bias));
  }
  EXPECT_CLOSE(m.forward(img, tok), stack(outs, 1), 1e-5, 1e-6);
}

TEST(CnnRnnCaptioner, DecoderIsCausal) {
  Generator g(10);
  CnnRnnCaptioner m(tiny_cnn_rnn(), &g);
  m.eval();
  const Tensor img = randn_seeded({1, 3, 16, 16}, 6, DType::f32);
  const Tensor a = m.forward(img, tokens_of({1, 4, 5, 6}, 1, 4));
  const Tensor b = m.forward(img, tokens_of({1, 4, 8, 3}, 1, 4));
  EXPECT_CLOSE(a.narrow(1, 0, 2), b.narrow(1, 0, 2), 0, 0);
  EXPECT_GT(amax(abs(a.narrow(1, 2, 2) - b.narrow(1, 2, 2))).item(), 1e-5);
}

TEST(CnnRnnCaptioner, GradcheckImageAndParametersFloat64) {
  Generator g(11);
  CnnRnnCaptioner m(tiny_cnn_rnn(), &g);
  m.to(DType::f64);
  m.train();  // batch statistics: a deterministic function of the batch
  const Tensor tok = random_tokens(2, 3, 9, 5);
  Tensor img = testing::param({2, 3, 16, 16}, 12);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{m.forward(in[0], tok)}; },
      {img, m.find("cnn.3.weight"), m.find("cnn.4.bias"), m.find("cell.weight_hh"),
       m.find("att_v.weight"), m.find("init_c.bias"), m.find("emb.weight")});
}

TEST(Captioners, BadInputsNameTheModel) {
  Generator g(12);
  ViTCaptioner vc(tiny_vit_cap(), &g);
  CnnRnnCaptioner cr(tiny_cnn_rnn(), &g);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 7, DType::f32);
  EXPECT_IRIS_ERROR(
      vc.forward(randn_seeded({2, 3, 20, 20}, 1, DType::f32), random_tokens(2, 3, 11, 0)), "ViT");
  EXPECT_IRIS_ERROR(vc.forward(img, random_tokens(2, 7, 11, 0)), "ViTCaptioner");  // > max_len
  EXPECT_IRIS_ERROR(vc.forward(img, random_tokens(3, 3, 11, 0)), "ViTCaptioner");  // batch
  EXPECT_IRIS_ERROR(cr.forward(img, randn_seeded({2, 3}, 1, DType::f32)), "CnnRnnCaptioner");
  EXPECT_IRIS_ERROR(
      cr.forward(randn_seeded({2, 1, 16, 16}, 1, DType::f32), random_tokens(2, 3, 9, 0)),
      "CnnRnnCaptioner");
  ViTCaptionerConfig bad = tiny_vit_cap();
  bad.heads = 5;
  EXPECT_IRIS_ERROR(ViTCaptioner{bad}, "heads");
  CnnRnnConfig bad2 = tiny_cnn_rnn();
  bad2.channels = {};
  EXPECT_IRIS_ERROR(CnnRnnCaptioner{bad2}, "CnnRnnCaptioner");
  EXPECT_IRIS_ERROR(caption_loss(vc, img, random_tokens(2, 1, 11, 0)), "caption_loss");
}

TEST(Captioners, CaptionLossIsTorchRefsCaptionLoss) {
  Generator g(13);
  ViTCaptioner m(tiny_vit_cap(), &g);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 8, DType::f32);
  const Tensor tok = random_tokens(2, 5, 11, 6);
  const CaptionLoss cl = caption_loss(m, img, tok);
  const Tensor logits = m.forward(img, tok.narrow(1, 0, 4));
  EXPECT_CLOSE(cl.logits, logits, 1e-6, 1e-6);
  // Mean of -log softmax at the next token, written out.
  const auto lp = log_softmax(logits, -1).to_vector<float>();
  const auto t = tok.to_vector<int64_t>();
  double total = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 4; ++i) total -= lp[(b * 4 + i) * 11 + t[b * 5 + i + 1]];
  EXPECT_NEAR(cl.loss.item(), total / 8, 1e-5);
}

}  // namespace
}  // namespace iris::models
