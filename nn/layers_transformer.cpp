#include "nn/layers_transformer.h"

#include "autograd/nn_ops.h"
#include "autograd/ops.h"
#include "nn/layers_activations.h"

namespace iris::nn {
namespace {

// x + branch and ln(x + branch) in one fused op (the pre-LN residual step).
AddLayerNormResult add_then_norm(const LayerNorm& ln, const Tensor& x, const Tensor& branch) {
  return add_layer_norm(x, branch, ln.normalized_shape, ln.weight, ln.bias, ln.eps);
}

}  // namespace

TransformerBlock::TransformerBlock(int64_t d, int64_t h, int64_t mlp_d, bool is_cross,
                                   bool is_causal, Generator* gen)
    : Module("TransformerBlock"),
      dim(d),
      heads(h),
      mlp_dim(mlp_d),
      cross(is_cross),
      causal(is_causal) {
  IRIS_CHECK(mlp_d > 0, "TransformerBlock: mlp_dim must be positive, got ", mlp_d);
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(d));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(d, h, true, gen));
  if (cross) {
    lnx = register_module("lnx", std::make_shared<LayerNorm>(d));
    xattn = register_module("xattn", std::make_shared<MultiheadAttention>(d, h, true, gen));
  }
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(d));
  mlp = register_module("mlp",
                        std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                            std::make_shared<Linear>(d, mlp_d, true, gen), std::make_shared<GELU>(),
                            std::make_shared<Linear>(mlp_d, d, true, gen)}));
}

Tensor TransformerBlock::forward(const Tensor& x_in, const Tensor& mem, const BlockOptions& opt) {
  IRIS_CHECK(!cross || mem.defined(), repr(), ": a cross-attention block needs a memory (input ",
             x_in.defined() ? x_in.desc() : "undefined", ")");
  IRIS_CHECK(cross || !mem.defined(), repr(), ": memory ", mem.desc(),
             " given to a block without cross-attention");
  MhaOptions self;
  self.causal = causal;
  self.q_lens = opt.lengths;
  self.k_lens = opt.lengths;
  self.key_padding_mask = opt.key_padding_mask;
  Tensor h = ln1->forward(x_in);
  // Each residual add feeds the next LayerNorm: one fused add_layer_norm each.
  AddLayerNormResult r =
      add_then_norm(cross ? *lnx : *ln2, x_in, attn->forward(h, h, h, self).output);
  if (cross) {
    MhaOptions xo;
    xo.q_lens = opt.lengths;
    xo.k_lens = opt.mem_lengths;
    xo.key_padding_mask = opt.mem_key_padding_mask;
    r = add_then_norm(*ln2, r.sum, xattn->forward(r.out, mem, mem, xo).output);
  }
  return r.sum + mlp->forward(r.out);
}

std::string TransformerBlock::extra_repr() const {
  return detail::cat("dim=", dim, ", heads=", heads, ", mlp_dim=", mlp_dim,
                     ", cross=", cross ? "true" : "false", ", causal=", causal ? "true" : "false");
}

}  // namespace iris::nn
