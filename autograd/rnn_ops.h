#pragma once
// Recurrent cells, exactly as torch.nn.LSTMCell and torch.nn.GRUCell: x [B, I] or
// unbatched [I]; weights [k*H, I] and [k*H, H] with PyTorch's gate order; biases may
// be undefined (bias=False); an undefined h (or c) means zeros, like hx=None.
#include "core/tensor.h"

namespace iris {

struct LstmState {
  Tensor h;
  Tensor c;
};

// Gates i, f, g, o: c' = f*c + i*g, h' = o*tanh(c'). w_ih [4H, I], w_hh [4H, H], b [4H].
LstmState lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                    const Tensor& w_hh, const Tensor& b_ih = Tensor(),
                    const Tensor& b_hh = Tensor());

// Gates r, z, n: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z)*n + z*h.
// w_ih [3H, I], w_hh [3H, H], b [3H].
Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh,
                const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

}  // namespace iris
