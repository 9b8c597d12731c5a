#pragma once
// Fused pointwise parts of the recurrent cells. The input and hidden GEMMs are done by
// the op layer (linear); these kernels take their results (bias included) and apply the
// gate math in one pass, saving the activations that backward consumes. All tensors are
// dense row-major, B rows; gate blocks are laid out [B, k*H] in PyTorch's order.
#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// LSTM (gates i, f, g, o): gates = gates_x + gates_h [B, 4H]; c_out = f*c + i*g,
// h_out = o*tanh(c_out); act [B, 4H] receives sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
IRIS_DECLARE_KERNEL(lstm_cell_forward,
                    void(const Tensor& gates_x, const Tensor& gates_h, const Tensor& c,
                         const Tensor& h_out, const Tensor& c_out, const Tensor& act));
// From dh_out, dc_out [B, H] and the saved act, c, c_out: dgates [B, 4H] (the gradient of
// both gates_x and gates_h) and dc [B, H].
IRIS_DECLARE_KERNEL(lstm_cell_backward,
                    void(const Tensor& dh_out, const Tensor& dc_out, const Tensor& act,
                         const Tensor& c, const Tensor& c_out, const Tensor& dgates,
                         const Tensor& dc));
// GRU (gates r, z, n): r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z),
// n = tanh(x_n + r * h_n), h_out = (h - n) * z + n, from gates_x, gates_h [B, 3H]
// (h_n includes b_hn, as in PyTorch). saved [B, 4H] receives r, z, n, h_n.
IRIS_DECLARE_KERNEL(gru_cell_forward,
                    void(const Tensor& gates_x, const Tensor& gates_h, const Tensor& h,
                         const Tensor& h_out, const Tensor& saved));
// From dh_out [B, H], saved and h: dgates_x, dgates_h [B, 3H] and dh [B, H].
IRIS_DECLARE_KERNEL(gru_cell_backward,
                    void(const Tensor& dh_out, const Tensor& saved, const Tensor& h,
                         const Tensor& dgates_x, const Tensor& dgates_h, const Tensor& dh));

}  // namespace iris::kernels
