// matmul / bmm / linear and their derivatives.
#include "autograd/autocast.h"
#include "autograd/function.h"
#include "autograd/linalg.h"
#include "autograd/ops.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/linalg.h"

namespace iris {

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

bool has_unit_stride(const Tensor& m) {  // m: [B, R, C]
  return m.stride(2) == 1 || m.stride(1) == 1 || m.size(1) == 1 || m.size(2) == 1;
}

// [batch..., R, C] -> [B, R, C] with one batch stride, as a view when the batch dims
// collapse and the matrices have a unit stride; otherwise a dense copy.
Tensor as_batched(const Tensor& t, int64_t B) {
  const int64_t nb = t.dim() - 2;
  bool collapsible = true;
  for (int64_t d = 0; d + 1 < nb; ++d)
    if (t.size(d) != 1 && t.size(d + 1) != 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1))
      collapsible = false;
  int64_t bstride = 0;  // of the innermost non-trivial batch dim
  for (int64_t d = nb - 1; d >= 0; --d)
    if (t.size(d) != 1) {
      bstride = t.stride(d);
      break;
    }
  Tensor v =
      t.as_strided({B, t.size(-2), t.size(-1)}, {bstride, t.stride(-2), t.stride(-1)}, t.offset());
  if (collapsible && has_unit_stride(v)) return v;
  Tensor dense = t.contiguous();
  return dense.as_strided({B, t.size(-2), t.size(-1)}, {t.size(-2) * t.size(-1), t.size(-1), 1},
                          dense.offset());
}

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  IRIS_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  IRIS_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.desc(), " and ", b.desc());
  IRIS_CHECK(a.device() == b.device(), op, ": device mismatch: ", a.desc(), " and ", b.desc());
  IRIS_CHECK(is_floating(a.dtype()), op, ": needs floating-point operands, got ", a.desc());
}

// The product of a [..., M, K] and b [..., K, N] (both >= 2-D); call without recording.
Tensor matmul_raw(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  IRIS_CHECK(b.size(-2) == K, "matmul: inner dims differ: ", a.desc(), " @ ", b.desc());
  const Shape abatch(a.shape().begin(), a.shape().end() - 2);
  const Shape bbatch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(abatch, bbatch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const auto gemm = kernels::batched_gemm_table().get(a.device());
  if (bbatch.empty() || numel_of(bbatch) == 1) {
    // Fold a's batch into the rows: one [B*M, K] @ [K, N] product.
    const int64_t rows = numel_of(batch) * M;
    Shape ae = batch;
    ae.push_back(M);
    ae.push_back(K);
    Tensor flat = a.expand(ae).reshape({1, rows, K});
    if (!has_unit_stride(flat)) flat = flat.contiguous();
    Tensor b3 = b.reshape({1, K, N});
    if (!has_unit_stride(b3)) b3 = b3.contiguous();
    gemm(flat, b3, out.as_strided({1, rows, N}, {rows * N, N, 1}, 0), 1.0, 0.0);
    return out;
  }
  Shape ae = batch, be = batch;
  ae.push_back(M), ae.push_back(K);
  be.push_back(K), be.push_back(N);
  const int64_t B = numel_of(batch);
  gemm(as_batched(a.expand(ae), B), as_batched(b.expand(be), B),
       out.as_strided({B, M, N}, {M * N, N, 1}, 0), 1.0, 0.0);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands("matmul", a, b);
  IRIS_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: 0-dim operand: ", a.desc(), " @ ", b.desc());
  if (const auto dt = autocast_dtype(a, b)) return matmul(a.to(*dt), b.to(*dt)).to(DType::f32);
  if (a.dim() == 1 && b.dim() == 1) {
    IRIS_CHECK(a.size(0) == b.size(0), "matmul: dot of ", a.desc(), " and ", b.desc());
    return sum(mul(a, b));
  }
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  Tensor out;
  {
    NoGradGuard ng;
    out = matmul_raw(a, b);
  }
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("matmul", {a, b}, {out}, [A = Saved(a), B = Saved(b)](const BackwardCtx& c) {
      const Tensor& a = A.get();
      const Tensor& b = B.get();
      const Tensor& g = c.grad();
      Tensor ga, gb;
      if (c.need(0)) ga = sum_to(matmul_raw(g, b.transpose(-1, -2)), a.shape());
      if (c.need(1)) {
        if (b.dim() == 2) {  // sum over a's batch inside one GEMM
          const int64_t K = a.size(-1), N = g.size(-1);
          gb = matmul_raw(a.reshape({-1, K}).t(), g.reshape({-1, N}));
        } else {
          gb = sum_to(matmul_raw(a.transpose(-1, -2), g), b.shape());
        }
      }
      return std::vector<Tensor>{ga, gb};
    });
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b);
  IRIS_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
             "bmm: expected [B, M, K] @ [B, K, N], got ", a.desc(), " @ ", b.desc());
  return matmul(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands("linear", x, weight);
  IRIS_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ",
             x.desc(), " does not match weight ", weight.desc(), " ([out, in])");
  const int64_t in = weight.size(1), outf = weight.size(0);
  IRIS_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == outf &&
                                 bias.dtype() == x.dtype() && bias.device() == x.device()),
             "linear: bias ", bias.desc(), " does not match weight ", weight.desc());
  if (const auto dt = autocast_dtype(x, weight)) {  // the bias is added in float32
    const Tensor y = linear(x.to(*dt), weight.to(*dt)).to(DType::f32);
    return bias.defined() ? y + bias : y;
  }
  Shape out_shape = x.shape();
  out_shape.back() = outf;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  const int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  {
    NoGradGuard ng;
    Tensor x2 = x.reshape({1, rows, in});
    if (!has_unit_stride(x2)) x2 = x2.contiguous();
    Tensor w2 = weight.t().unsqueeze(0);  // [1, in, out] view: the GEMM reads it transposed
    if (!has_unit_stride(w2)) w2 = w2.contiguous();
    Tensor o2 = out.as_strided({1, rows, outf}, {rows * outf, outf, 1}, 0);
    if (rows > 0 && bias.defined()) {
      // The bias in the GEMM's epilogue (cuBLASLt's on a GPU): no second pass over out.
      kernels::gemm_epilogue_table().get(x.device())(
          x2, w2, bias.contiguous(), o2, kernels::GemmEpilogue::bias, kernels::GemmImpl::automatic);
    } else if (rows > 0) {
      kernels::batched_gemm_table().get(x.device())(x2, w2, o2, 1.0, 0.0);
    }
  }
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  if (autograd::any_requires_grad(inputs))
    autograd::record("linear", inputs, {out},
                     [X = Saved(x), W = Saved(weight), in, outf](const BackwardCtx& c) {
                       const Tensor& x = X.get();
                       const Tensor g2 = c.grad().reshape({-1, outf});
                       std::vector<Tensor> grads(c.needs.size());
                       if (c.need(0)) grads[0] = matmul_raw(g2, W.get()).reshape(x.shape());
                       if (c.need(1)) grads[1] = matmul_raw(g2.t(), x.reshape({-1, in}));
                       if (c.needs.size() > 2 && c.need(2)) grads[2] = sum(g2, {0});
                       return grads;
                     });
  return out;
}

}  // namespace iris
