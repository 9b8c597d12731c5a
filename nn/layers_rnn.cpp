#include "nn/layers_rnn.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace iris::nn {
namespace {

Tensor uniform_param(Module& m, const std::string& name, const Shape& shape, int64_t hidden,
                     Generator* gen) {
  Tensor p = m.register_parameter(name, empty(shape));
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden));
  init::uniform_(p, -bound, bound, gen);
  return p;
}

void check_sizes(const char* who, int64_t input_size, int64_t hidden_size) {
  IRIS_CHECK(input_size > 0 && hidden_size > 0, who, ": input_size ", input_size,
             " and hidden_size ", hidden_size, " must be positive");
}

std::string describe(const Tensor& t) { return t.defined() ? t.desc() : "undefined"; }

// Per-sample lengths as per-step masks: steps before `all_active` need none, steps from
// `steps_run` on are padding for every sample.
struct StepPlan {
  int64_t all_active = 0;
  int64_t steps_run = 0;
  std::vector<Tensor> active;  // bool [B, 1] for steps in [all_active, steps_run)
};

StepPlan plan_steps(const std::string& who, const Tensor& lengths, int64_t B, int64_t T,
                    Device device) {
  if (!lengths.defined()) return {T, T, {}};
  IRIS_CHECK(lengths.dim() == 1 && lengths.size(0) == B &&
                 (lengths.dtype() == DType::i64 || lengths.dtype() == DType::i32),
             who, ": lengths must be int32/int64 [", B, "], got ", lengths.desc());
  const std::vector<int64_t> lens = lengths.to_vector<int64_t>();
  for (int64_t l : lens) IRIS_CHECK(l >= 0 && l <= T, who, ": length ", l, " outside [0, ", T, "]");
  StepPlan plan;
  plan.all_active = *std::min_element(lens.begin(), lens.end());
  plan.steps_run = *std::max_element(lens.begin(), lens.end());
  std::vector<uint8_t> bits(B);
  for (int64_t t = plan.all_active; t < plan.steps_run; ++t) {
    for (int64_t b = 0; b < B; ++b) bits[b] = t < lens[b];
    plan.active.push_back(Tensor::from_vector(bits, {B, 1}).to(DType::b8).to(device));
  }
  return plan;
}

Tensor hidden_of(const Tensor& h) { return h; }
Tensor hidden_of(const LstmState& s) { return s.h; }
Tensor keep_where(const Tensor& m, const Tensor& next, const Tensor& prev) {
  return where(m, next, prev);
}
LstmState keep_where(const Tensor& m, const LstmState& next, const LstmState& prev) {
  return {where(m, next.h, prev.h), where(m, next.c, prev.c)};
}

// One layer over in [B, T, I]: step(x_t, state) -> next state. Returns [B, T, H].
template <class State, class Step>
Tensor run_layer(const Tensor& in, State& state, const StepPlan& plan, int64_t H, Step step) {
  const int64_t B = in.size(0), T = in.size(1);
  const Tensor zero = scalar_like(in, 0.0);
  std::vector<Tensor> outs;
  outs.reserve(T);
  for (int64_t t = 0; t < plan.steps_run; ++t) {
    State next = step(in.select(1, t), state);
    if (t < plan.all_active) {
      state = next;
      outs.push_back(hidden_of(next));
    } else {
      const Tensor& m = plan.active[t - plan.all_active];
      outs.push_back(where(m, hidden_of(next), zero));
      state = keep_where(m, next, state);
    }
  }
  if (plan.steps_run < T) {
    const Tensor pad = zeros({B, H}, in.dtype(), in.device());
    for (int64_t t = plan.steps_run; t < T; ++t) outs.push_back(pad);
  }
  return stack(outs, 1);
}

// Registers the per-layer parameters of an LSTM (gates = 4) or GRU (gates = 3).
void make_layers(Module& m, int64_t gates, int64_t input_size, int64_t H, const RnnOptions& opt,
                 Generator* gen, std::vector<Tensor>& w_ih, std::vector<Tensor>& w_hh,
                 std::vector<Tensor>& b_ih, std::vector<Tensor>& b_hh) {
  check_sizes(m.type_name().c_str(), input_size, H);
  IRIS_CHECK(opt.num_layers >= 1, m.type_name(), ": num_layers must be >= 1, got ", opt.num_layers);
  IRIS_CHECK(opt.dropout >= 0 && opt.dropout <= 1, m.type_name(),
             ": dropout must be in [0, 1], got ", opt.dropout);
  for (int64_t l = 0; l < opt.num_layers; ++l) {
    const std::string k = std::to_string(l);
    const int64_t in = l == 0 ? input_size : H;
    w_ih.push_back(uniform_param(m, "weight_ih_l" + k, {gates * H, in}, H, gen));
    w_hh.push_back(uniform_param(m, "weight_hh_l" + k, {gates * H, H}, H, gen));
    if (opt.bias) {
      b_ih.push_back(uniform_param(m, "bias_ih_l" + k, {gates * H}, H, gen));
      b_hh.push_back(uniform_param(m, "bias_hh_l" + k, {gates * H}, H, gen));
    } else {
      b_ih.emplace_back();
      b_hh.emplace_back();
    }
  }
}

// x as [B, T, I], checked.
Tensor batch_major(const Module& m, const Tensor& x, int64_t input_size, bool batch_first) {
  IRIS_CHECK(
      x.defined() && x.dim() == 3 && x.size(2) == input_size && x.size(0) > 0 && x.size(1) > 0,
      m.repr(), ": expected input ", batch_first ? "[B, T, " : "[T, B, ", input_size, "], got ",
      describe(x));
  return batch_first ? x : x.transpose(0, 1);
}

// Initial state of layer l from s [num_layers, B, H] (undefined: zeros).
Tensor initial(const Module& m, const char* what, const Tensor& s, int64_t l, int64_t L, int64_t B,
               int64_t H, const Tensor& x) {
  if (!s.defined()) return zeros({B, H}, x.dtype(), x.device());
  IRIS_CHECK(s.shape() == (Shape{L, B, H}), m.repr(), ": ", what, " ", s.desc(),
             " is not [num_layers, B, H] = ", shape_str({L, B, H}));
  return s.select(0, l);
}

std::string rnn_repr(int64_t in, int64_t H, const RnnOptions& o) {
  return detail::cat(in, ", ", H, ", num_layers=", o.num_layers,
                     ", bias=", o.bias ? "true" : "false",
                     ", batch_first=", o.batch_first ? "true" : "false", ", dropout=", o.dropout);
}

}  // namespace

// ---- cells ----

LSTMCell::LSTMCell(int64_t in, int64_t hidden, bool bias, Generator* gen)
    : Module("LSTMCell"), input_size(in), hidden_size(hidden) {
  check_sizes("LSTMCell", in, hidden);
  weight_ih = uniform_param(*this, "weight_ih", {4 * hidden, in}, hidden, gen);
  weight_hh = uniform_param(*this, "weight_hh", {4 * hidden, hidden}, hidden, gen);
  if (bias) {
    bias_ih = uniform_param(*this, "bias_ih", {4 * hidden}, hidden, gen);
    bias_hh = uniform_param(*this, "bias_hh", {4 * hidden}, hidden, gen);
  }
}

LstmState LSTMCell::forward(const Tensor& x, const LstmState& s) {
  return lstm_cell(x, s.h, s.c, weight_ih, weight_hh, bias_ih, bias_hh);
}

std::string LSTMCell::extra_repr() const {
  return detail::cat(input_size, ", ", hidden_size,
                     ", bias=", bias_ih.defined() ? "true" : "false");
}

GRUCell::GRUCell(int64_t in, int64_t hidden, bool bias, Generator* gen)
    : Module("GRUCell"), input_size(in), hidden_size(hidden) {
  check_sizes("GRUCell", in, hidden);
  weight_ih = uniform_param(*this, "weight_ih", {3 * hidden, in}, hidden, gen);
  weight_hh = uniform_param(*this, "weight_hh", {3 * hidden, hidden}, hidden, gen);
  if (bias) {
    bias_ih = uniform_param(*this, "bias_ih", {3 * hidden}, hidden, gen);
    bias_hh = uniform_param(*this, "bias_hh", {3 * hidden}, hidden, gen);
  }
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) {
  return gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh);
}

std::string GRUCell::extra_repr() const {
  return detail::cat(input_size, ", ", hidden_size,
                     ", bias=", bias_ih.defined() ? "true" : "false");
}

// ---- sequences ----

LSTM::LSTM(int64_t in, int64_t hidden, RnnOptions opt, Generator* gen)
    : Module("LSTM"), input_size(in), hidden_size(hidden), options(opt) {
  make_layers(*this, 4, in, hidden, opt, gen, weight_ih, weight_hh, bias_ih, bias_hh);
}

LstmOutput LSTM::forward(const Tensor& x_in, const LstmState& state, const Tensor& lengths) {
  const Tensor x = batch_major(*this, x_in, input_size, options.batch_first);
  const int64_t B = x.size(0), T = x.size(1), H = hidden_size, L = options.num_layers;
  const StepPlan plan = plan_steps(repr(), lengths, B, T, x.device());
  std::vector<Tensor> h_n, c_n;
  Tensor layer_in = x;
  for (int64_t l = 0; l < L; ++l) {
    LstmState s{initial(*this, "h0", state.h, l, L, B, H, x),
                initial(*this, "c0", state.c, l, L, B, H, x)};
    const Tensor &wi = weight_ih[l], &wh = weight_hh[l], &bi = bias_ih[l], &bh = bias_hh[l];
    Tensor out = run_layer(layer_in, s, plan, H, [&](const Tensor& xt, const LstmState& prev) {
      return lstm_cell(xt, prev.h, prev.c, wi, wh, bi, bh);
    });
    h_n.push_back(s.h);
    c_n.push_back(s.c);
    if (l + 1 < L && options.dropout > 0 && is_training())
      out = dropout(out, options.dropout, true, options.dropout_generator);
    layer_in = out;
  }
  return {options.batch_first ? layer_in : layer_in.transpose(0, 1), stack(h_n, 0), stack(c_n, 0)};
}

std::string LSTM::extra_repr() const { return rnn_repr(input_size, hidden_size, options); }

GRU::GRU(int64_t in, int64_t hidden, RnnOptions opt, Generator* gen)
    : Module("GRU"), input_size(in), hidden_size(hidden), options(opt) {
  make_layers(*this, 3, in, hidden, opt, gen, weight_ih, weight_hh, bias_ih, bias_hh);
}

GruOutput GRU::forward(const Tensor& x_in, const Tensor& h0, const Tensor& lengths) {
  const Tensor x = batch_major(*this, x_in, input_size, options.batch_first);
  const int64_t B = x.size(0), T = x.size(1), H = hidden_size, L = options.num_layers;
  const StepPlan plan = plan_steps(repr(), lengths, B, T, x.device());
  std::vector<Tensor> h_n;
  Tensor layer_in = x;
  for (int64_t l = 0; l < L; ++l) {
    Tensor h = initial(*this, "h0", h0, l, L, B, H, x);
    const Tensor &wi = weight_ih[l], &wh = weight_hh[l], &bi = bias_ih[l], &bh = bias_hh[l];
    Tensor out = run_layer(layer_in, h, plan, H, [&](const Tensor& xt, const Tensor& prev) {
      return gru_cell(xt, prev, wi, wh, bi, bh);
    });
    h_n.push_back(h);
    if (l + 1 < L && options.dropout > 0 && is_training())
      out = dropout(out, options.dropout, true, options.dropout_generator);
    layer_in = out;
  }
  return {options.batch_first ? layer_in : layer_in.transpose(0, 1), stack(h_n, 0)};
}

std::string GRU::extra_repr() const { return rnn_repr(input_size, hidden_size, options); }

}  // namespace iris::nn
