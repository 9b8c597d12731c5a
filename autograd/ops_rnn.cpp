// LSTM and GRU cells: the two GEMMs through linear (which records their weight and
// bias gradients), then one fused gate node whose backward is one fused kernel.
#include "autograd/function.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "autograd/rnn_ops.h"
#include "kernels/rnn.h"

namespace iris {

using autograd::dense;

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

// Checked geometry of a cell call with `gates` gate blocks.
struct CellShape {
  bool batched;
  int64_t B, I, H;
};

void check_like(const char* op, const char* what, const Tensor& t, const Tensor& x) {
  IRIS_CHECK(t.dtype() == x.dtype() && t.device() == x.device(), op, ": ", what, " ", t.desc(),
             " does not share dtype and device with input ", x.desc());
}

CellShape check_cell(const char* op, int64_t gates, const Tensor& x, const Tensor& w_ih,
                     const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  IRIS_CHECK(x.defined() && w_ih.defined() && w_hh.defined(), op,
             ": input, w_ih and w_hh must be defined");
  IRIS_CHECK(x.dim() == 1 || x.dim() == 2, op, ": expected input [B, I] or [I], got ", x.desc());
  check_like(op, "w_ih", w_ih, x);
  check_like(op, "w_hh", w_hh, x);
  IRIS_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * w_hh.size(1), op, ": w_hh ", w_hh.desc(),
             " is not [", gates, "H, H]");
  const int64_t H = w_hh.size(1);
  const int64_t I = x.size(-1);
  IRIS_CHECK(w_ih.dim() == 2 && w_ih.size(0) == gates * H && w_ih.size(1) == I, op, ": w_ih ",
             w_ih.desc(), " does not match input ", x.desc(), " and w_hh ", w_hh.desc(), " ([",
             gates, "H, I] = [", gates * H, ", ", I, "])");
  for (const Tensor* b : {&b_ih, &b_hh}) {
    if (!b->defined()) continue;
    check_like(op, "bias", *b, x);
    IRIS_CHECK(b->dim() == 1 && b->size(0) == gates * H, op, ": bias ", b->desc(), " is not [",
               gates * H, "]");
  }
  const bool batched = x.dim() == 2;
  return {batched, batched ? x.size(0) : 1, I, H};
}

// The state as [B, H]: checked against the input, zeros when undefined.
Tensor state_2d(const char* op, const char* what, const Tensor& s, const Tensor& x,
                const CellShape& cs) {
  if (!s.defined()) return zeros({cs.B, cs.H}, x.dtype(), x.device());
  check_like(op, what, s, x);
  const Shape want = cs.batched ? Shape{cs.B, cs.H} : Shape{cs.H};
  IRIS_CHECK(s.shape() == want, op, ": ", what, " ", s.desc(), " is not ", shape_str(want),
             " for input ", x.desc());
  return cs.batched ? s : s.unsqueeze(0);
}

}  // namespace

LstmState lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                    const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  const char* op = "lstm_cell";
  const CellShape cs = check_cell(op, 4, x, w_ih, w_hh, b_ih, b_hh);
  const Tensor x2 = cs.batched ? x : x.unsqueeze(0);
  const Tensor h2 = state_2d(op, "h", h, x, cs);
  const Tensor c2 = state_2d(op, "c", c, x, cs);
  const Tensor gates_x = linear(x2, w_ih, b_ih);
  const Tensor gates_h = linear(h2, w_hh, b_hh);
  const Tensor c_in = dense(c2);
  Tensor h_out = Tensor::empty({cs.B, cs.H}, x.dtype(), x.device());
  Tensor c_out = Tensor::empty({cs.B, cs.H}, x.dtype(), x.device());
  Tensor act = Tensor::empty({cs.B, 4 * cs.H}, x.dtype(), x.device());
  kernels::lstm_cell_forward_table().get(x.device())(gates_x, gates_h, c_in, h_out, c_out, act);
  if (autograd::any_requires_grad({&gates_x, &gates_h, &c2}))
    autograd::record(
        op, {gates_x, gates_h, c2}, {h_out, c_out},
        [A = Saved(act), C = Saved(c_in), CY = Saved(c_out)](const BackwardCtx& ctx) {
          const Tensor& c = C.get();
          Tensor dgates = Tensor::empty(A.get().shape(), c.dtype(), c.device());
          Tensor dc = Tensor::empty(c.shape(), c.dtype(), c.device());
          kernels::lstm_cell_backward_table().get(c.device())(
              dense(ctx.grad(0)), dense(ctx.grad(1)), A.get(), c, CY.get(), dgates, dc);
          return std::vector<Tensor>{ctx.need(0) ? dgates : Tensor(),
                                     ctx.need(1) ? dgates : Tensor(), ctx.need(2) ? dc : Tensor()};
        });
  if (cs.batched) return {h_out, c_out};
  return {h_out.squeeze(0), c_out.squeeze(0)};
}

Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh,
                const Tensor& b_ih, const Tensor& b_hh) {
  const char* op = "gru_cell";
  const CellShape cs = check_cell(op, 3, x, w_ih, w_hh, b_ih, b_hh);
  const Tensor x2 = cs.batched ? x : x.unsqueeze(0);
  const Tensor h2 = state_2d(op, "h", h, x, cs);
  const Tensor gates_x = linear(x2, w_ih, b_ih);
  const Tensor gates_h = linear(h2, w_hh, b_hh);
  const Tensor h_in = dense(h2);
  Tensor h_out = Tensor::empty({cs.B, cs.H}, x.dtype(), x.device());
  Tensor saved = Tensor::empty({cs.B, 4 * cs.H}, x.dtype(), x.device());
  kernels::gru_cell_forward_table().get(x.device())(gates_x, gates_h, h_in, h_out, saved);
  if (autograd::any_requires_grad({&gates_x, &gates_h, &h2}))
    autograd::record(op, {gates_x, gates_h, h2}, {h_out},
                     [S = Saved(saved), Hs = Saved(h_in)](const BackwardCtx& ctx) {
                       const Tensor& h = Hs.get();
                       const int64_t B = h.size(0), H = h.size(1);
                       Tensor dgx = Tensor::empty({B, 3 * H}, h.dtype(), h.device());
                       Tensor dgh = Tensor::empty({B, 3 * H}, h.dtype(), h.device());
                       Tensor dh = Tensor::empty({B, H}, h.dtype(), h.device());
                       kernels::gru_cell_backward_table().get(h.device())(dense(ctx.grad()),
                                                                          S.get(), h, dgx, dgh, dh);
                       return std::vector<Tensor>{ctx.need(0) ? dgx : Tensor(),
                                                  ctx.need(1) ? dgh : Tensor(),
                                                  ctx.need(2) ? dh : Tensor()};
                     });
  return cs.batched ? h_out : h_out.squeeze(0);
}

}  // namespace iris
