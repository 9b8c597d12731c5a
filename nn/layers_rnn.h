#pragma once
// Recurrent layers with torch.nn's parameter names, gate orders and initialisation
// (every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))): LSTMCell, GRUCell, and the
// multi-layer LSTM and GRU with per-sample lengths.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/rnn_ops.h"
#include "core/rng.h"
#include "nn/module.h"

namespace iris::nn {

// weight_ih [4H, I], weight_hh [4H, H], bias_ih, bias_hh [4H]; gates i, f, g, o.
class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true, Generator* gen = nullptr);
  // x [B, I] or [I]; an undefined h or c is zeros.
  LstmState forward(const Tensor& x, const LstmState& state);
  Tensor forward(const Tensor& x) override { return forward(x, LstmState{}).h; }
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

// weight_ih [3H, I], weight_hh [3H, H], biases [3H]; gates r, z, n.
class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x, const Tensor& h);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

struct RnnOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;  // torch's default: x [T, B, I]
  // Dropout on the outputs of every layer but the last, in training mode.
  double dropout = 0.0;
  Generator* dropout_generator = nullptr;  // the default generator when null
};

struct LstmOutput {
  Tensor output;  // [B, T, H] (batch_first) or [T, B, H]
  Tensor h_n;     // [num_layers, B, H]
  Tensor c_n;     // [num_layers, B, H]
};

struct GruOutput {
  Tensor output;
  Tensor h_n;
};

// Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} per layer k.
// `lengths` (int32/int64 [B], each in [0, T]; undefined = all T) behaves as torch's
// pack_padded_sequence(enforce_sorted=False) then pad_packed_sequence(total_length=T):
// outputs at t >= length are zero and a sample's final state is the one at its length.
class LSTM : public Module {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, RnnOptions opt = {}, Generator* gen = nullptr);
  // state.h / state.c: [num_layers, B, H] or undefined (zeros).
  LstmOutput forward(const Tensor& x, const LstmState& state, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& x) override { return forward(x, LstmState{}).output; }
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  RnnOptions options;
  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;  // one per layer
};

class GRU : public Module {
 public:
  GRU(int64_t input_size, int64_t hidden_size, RnnOptions opt = {}, Generator* gen = nullptr);
  // h0: [num_layers, B, H] or undefined (zeros).
  GruOutput forward(const Tensor& x, const Tensor& h0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()).output; }
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  RnnOptions options;
  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace iris::nn
