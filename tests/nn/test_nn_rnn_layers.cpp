// LSTMCell, GRUCell, LSTM and GRU against naive double loops (gates written out), with
// multiple layers, both batch layouts, initial states and per-sample lengths; float64
// gradchecks of inputs, states and every parameter; initialisation bounds; bad inputs.
#include <cmath>

#include "nn/layers.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using testing::param;
using testing::randn_seeded;
using Vec = std::vector<double>;

double sigm(double v) { return 1 / (1 + std::exp(-v)); }

// W [rows, cols] @ v + b (b may be empty), rows = W.size() / v.size().
Vec affine(const Vec& W, const Vec& v, const Vec& b) {
  const size_t cols = v.size(), rows = W.size() / cols;
  Vec out(rows);
  for (size_t r = 0; r < rows; ++r) {
    double s = b.empty() ? 0 : b[r];
    for (size_t c = 0; c < cols; ++c) s += W[r * cols + c] * v[c];
    out[r] = s;
  }
  return out;
}

struct CellWeights {
  Vec w_ih, w_hh, b_ih, b_hh;
};

CellWeights weights_of(const Tensor& wi, const Tensor& wh, const Tensor& bi, const Tensor& bh) {
  return {wi.to_vector<double>(), wh.to_vector<double>(),
          bi.defined() ? bi.to_vector<double>() : Vec{},
          bh.defined() ? bh.to_vector<double>() : Vec{}};
}

void lstm_step(const CellWeights& w, const Vec& x, Vec& h, Vec& c) {
  const size_t H = h.size();
  const Vec a = affine(w.w_ih, x, w.b_ih), b = affine(w.w_hh, h, w.b_hh);
  for (size_t j = 0; j < H; ++j) {
    const double i = sigm(a[j] + b[j]), f = sigm(a[H + j] + b[H + j]);
    const double g = std::tanh(a[2 * H + j] + b[2 * H + j]), o = sigm(a[3 * H + j] + b[3 * H + j]);
    c[j] = f * c[j] + i * g;
    h[j] = o * std::tanh(c[j]);
  }
}

void gru_step(const CellWeights& w, const Vec& x, Vec& h) {
  const size_t H = h.size();
  const Vec a = affine(w.w_ih, x, w.b_ih), b = affine(w.w_hh, h, w.b_hh);
  for (size_t j = 0; j < H; ++j) {
    const double r = sigm(a[j] + b[j]), z = sigm(a[H + j] + b[H + j]);
    const double n = std::tanh(a[2 * H + j] + r * b[2 * H + j]);
    h[j] = (1 - z) * n + z * h[j];
  }
}

// Runs a stack of layers sample by sample, time step by time step, stopping at each
// sample's length: out [B, T, H] (zeros past the length), h_n / c_n [L, B, H].
struct SeqResult {
  Vec out, h_n, c_n;
};
SeqResult run_naive(bool lstm, const std::vector<CellWeights>& layers, const Vec& x, int64_t B,
                    int64_t T, int64_t I, int64_t H, const std::vector<int64_t>& lens,
                    const Vec& h0, const Vec& c0) {
  const int64_t L = static_cast<int64_t>(layers.size());
  SeqResult r{Vec(B * T * H, 0.0), Vec(L * B * H), Vec(L * B * H)};
  for (int64_t b = 0; b < B; ++b) {
    std::vector<Vec> seq(T);
    for (int64_t t = 0; t < T; ++t)
      seq[t] = Vec(x.begin() + (b * T + t) * I, x.begin() + (b * T + t + 1) * I);
    for (int64_t l = 0; l < L; ++l) {
      Vec h(h0.begin() + (l * B + b) * H, h0.begin() + (l * B + b + 1) * H);
      Vec c(c0.begin() + (l * B + b) * H, c0.begin() + (l * B + b + 1) * H);
      for (int64_t t = 0; t < lens[b]; ++t) {
        if (lstm)
          lstm_step(layers[l], seq[t], h, c);
        else
          gru_step(layers[l], seq[t], h);
        seq[t] = h;
      }
      for (int64_t t = lens[b]; t < T; ++t) seq[t] = Vec(H, 0.0);
      std::copy(h.begin(), h.end(), r.h_n.begin() + (l * B + b) * H);
      std::copy(c.begin(), c.end(), r.c_n.begin() + (l * B + b) * H);
    }
    for (int64_t t = 0; t < T; ++t)
      std::copy(seq[t].begin(), seq[t].end(), r.out.begin() + (b * T + t) * H);
  }
  return r;
}

std::vector<CellWeights> layers_of(const std::vector<Tensor>& wi, const std::vector<Tensor>& wh,
                                   const std::vector<Tensor>& bi, const std::vector<Tensor>& bh) {
  std::vector<CellWeights> out;
  for (size_t l = 0; l < wi.size(); ++l) out.push_back(weights_of(wi[l], wh[l], bi[l], bh[l]));
  return out;
}

TEST(LSTMCell, MatchesNaiveGatesAndGradchecks) {
  Generator g(1);
  LSTMCell cell(5, 3, true, &g);
  EXPECT_EQ(cell.weight_ih.shape(), (Shape{12, 5}));
  const double bound = 1 / std::sqrt(3.0);
  for (const Tensor& p : cell.parameters()) {
    EXPECT_LE(amax(abs(p)).item(), bound);
  }
  cell.to(DType::f64);
  const Tensor x = randn_seeded({5, 4}, 2).t(), h = randn_seeded({4, 3}, 3),
               c = randn_seeded({4, 3}, 4);
  const LstmState s = cell.forward(x, {h, c});
  const CellWeights w = weights_of(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh);
  const Vec xv = x.contiguous().to_vector<double>(), hv = h.to_vector<double>(),
            cv = c.to_vector<double>();
  Vec href, cref;
  for (int b = 0; b < 4; ++b) {
    Vec hb(hv.begin() + b * 3, hv.begin() + b * 3 + 3),
        cb(cv.begin() + b * 3, cv.begin() + b * 3 + 3);
    lstm_step(w, Vec(xv.begin() + b * 5, xv.begin() + b * 5 + 5), hb, cb);
    href.insert(href.end(), hb.begin(), hb.end());
    cref.insert(cref.end(), cb.begin(), cb.end());
  }
  EXPECT_CLOSE(s.h, Tensor::from_vector(href, {4, 3}), 1e-12, 1e-13);
  EXPECT_CLOSE(s.c, Tensor::from_vector(cref, {4, 3}), 1e-12, 1e-13);
  EXPECT_EQ(cell.forward(x).shape(), (Shape{4, 3}));  // zero state
  const Tensor xs = param({2, 5}, 5), hs = param({2, 3}, 6), cs = param({2, 3}, 7);
  std::vector<Tensor> inputs = {xs, hs, cs};
  for (const Tensor& p : cell.parameters()) inputs.push_back(p);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>&) {
        const LstmState o = cell.forward(xs, {hs, cs});
        return std::vector<Tensor>{o.h, o.c};
      },
      inputs);
}

TEST(GRUCell, MatchesNaiveGatesAndGradchecks) {
  Generator g(2);
  GRUCell cell(4, 3, true, &g);
  EXPECT_EQ(cell.weight_hh.shape(), (Shape{9, 3}));
  cell.to(DType::f64);
  const Tensor x = randn_seeded({2, 4}, 2), h = randn_seeded({2, 3}, 3);
  const CellWeights w = weights_of(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh);
  const Vec xv = x.to_vector<double>(), hv = h.to_vector<double>();
  Vec ref;
  for (int b = 0; b < 2; ++b) {
    Vec hb(hv.begin() + b * 3, hv.begin() + b * 3 + 3);
    gru_step(w, Vec(xv.begin() + b * 4, xv.begin() + b * 4 + 4), hb);
    ref.insert(ref.end(), hb.begin(), hb.end());
  }
  EXPECT_CLOSE(cell.forward(x, h), Tensor::from_vector(ref, {2, 3}), 1e-12, 1e-13);
  GRUCell nobias(4, 3, false, &g);
  EXPECT_EQ(nobias.state_dict().size(), 2u);
  const Tensor xs = param({2, 4}, 5), hs = param({2, 3}, 6);
  std::vector<Tensor> inputs = {xs, hs};
  for (const Tensor& p : cell.parameters()) inputs.push_back(p);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>&) { return std::vector<Tensor>{cell.forward(xs, hs)}; },
      inputs);
}

struct SeqCase {
  bool batch_first;
  bool with_state;
  std::vector<int64_t> lens;  // empty: none
};

TEST(LSTM, MultiLayerWithLengthsMatchesNaiveLoops) {
  const int64_t B = 3, T = 5, I = 4, H = 3, L = 2;
  for (const SeqCase& sc : {SeqCase{true, false, {}}, SeqCase{true, true, {5, 2, 4}},
                            SeqCase{false, true, {3, 5, 1}}, SeqCase{true, false, {0, 2, 2}}}) {
    Generator g(3);
    LSTM lstm(I, H, RnnOptions{.num_layers = L, .batch_first = sc.batch_first}, &g);
    lstm.to(DType::f64);
    const Tensor xb = randn_seeded({B, T, I}, 4);  // batch-major values
    const Tensor x = sc.batch_first ? xb : xb.transpose(0, 1).contiguous();
    const Tensor h0 = sc.with_state ? randn_seeded({L, B, H}, 5) : Tensor();
    const Tensor c0 = sc.with_state ? randn_seeded({L, B, H}, 6) : Tensor();
    const Tensor lens = sc.lens.empty() ? Tensor() : Tensor::from_vector(sc.lens, {B});
    const LstmOutput o = lstm.forward(x, {h0, c0}, lens);
    const std::vector<int64_t> lv = sc.lens.empty() ? std::vector<int64_t>(B, T) : sc.lens;
    const Vec zeros_state(L * B * H, 0.0);
    const SeqResult r =
        run_naive(true, layers_of(lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh),
                  xb.to_vector<double>(), B, T, I, H, lv,
                  sc.with_state ? h0.to_vector<double>() : zeros_state,
                  sc.with_state ? c0.to_vector<double>() : zeros_state);
    const Tensor out = sc.batch_first ? o.output : o.output.transpose(0, 1);
    EXPECT_CLOSE(out, Tensor::from_vector(r.out, {B, T, H}), 1e-12, 1e-13);
    EXPECT_CLOSE(o.h_n, Tensor::from_vector(r.h_n, {L, B, H}), 1e-12, 1e-13);
    EXPECT_CLOSE(o.c_n, Tensor::from_vector(r.c_n, {L, B, H}), 1e-12, 1e-13);
  }
}

TEST(GRU, MultiLayerWithLengthsMatchesNaiveLoops) {
  const int64_t B = 3, T = 4, I = 2, H = 5, L = 3;
  for (const SeqCase& sc : {SeqCase{false, false, {}}, SeqCase{true, true, {4, 1, 3}}}) {
    Generator g(4);
    GRU gru(I, H, RnnOptions{.num_layers = L, .batch_first = sc.batch_first}, &g);
    gru.to(DType::f64);
    const Tensor xb = randn_seeded({B, T, I}, 7);
    const Tensor x = sc.batch_first ? xb : xb.transpose(0, 1);  // strided time-major
    const Tensor h0 = sc.with_state ? randn_seeded({L, B, H}, 8) : Tensor();
    const Tensor lens =
        sc.lens.empty() ? Tensor() : Tensor::from_vector(sc.lens, {B}).to(DType::i32);
    const GruOutput o = gru.forward(x, h0, lens);
    const std::vector<int64_t> lv = sc.lens.empty() ? std::vector<int64_t>(B, T) : sc.lens;
    const Vec zeros_state(L * B * H, 0.0);
    const SeqResult r =
        run_naive(false, layers_of(gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh),
                  xb.to_vector<double>(), B, T, I, H, lv,
                  sc.with_state ? h0.to_vector<double>() : zeros_state, zeros_state);
    const Tensor out = sc.batch_first ? o.output : o.output.transpose(0, 1);
    EXPECT_CLOSE(out, Tensor::from_vector(r.out, {B, T, H}), 1e-12, 1e-13);
    EXPECT_CLOSE(o.h_n, Tensor::from_vector(r.h_n, {L, B, H}), 1e-12, 1e-13);
  }
}

TEST(LSTM, GradcheckWithLengthsAndState) {
  Generator g(5);
  LSTM lstm(2, 2, RnnOptions{.num_layers = 2, .batch_first = true}, &g);
  lstm.to(DType::f64);
  const Tensor x = param({2, 3, 2}, 1), h0 = param({2, 2, 2}, 2), c0 = param({2, 2, 2}, 3);
  const Tensor lens = Tensor::from_vector<int64_t>({3, 1}, {2});
  std::vector<Tensor> inputs = {x, h0, c0};
  for (const Tensor& p : lstm.parameters()) inputs.push_back(p);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>&) {
        const LstmOutput o = lstm.forward(x, {h0, c0}, lens);
        return std::vector<Tensor>{o.output, o.h_n, o.c_n};
      },
      inputs);
}

TEST(GRU, GradcheckWithLengths) {
  Generator g(6);
  GRU gru(3, 2, RnnOptions{.num_layers = 2, .bias = false}, &g);
  gru.to(DType::f64);
  EXPECT_EQ(gru.state_dict().size(), 4u);
  const Tensor x = param({3, 2, 3}, 1), h0 = param({2, 2, 2}, 2);
  const Tensor lens = Tensor::from_vector<int64_t>({2, 3}, {2});
  std::vector<Tensor> inputs = {x, h0};
  for (const Tensor& p : gru.parameters()) inputs.push_back(p);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>&) {
        const GruOutput o = gru.forward(x, h0, lens);
        return std::vector<Tensor>{o.output, o.h_n};
      },
      inputs);
}

TEST(LSTM, InterLayerDropoutOnlyInTraining) {
  Generator init(7), drops(8);
  LSTM lstm(
      3, 4,
      RnnOptions{.num_layers = 2, .batch_first = true, .dropout = 0.5, .dropout_generator = &drops},
      &init);
  const Tensor x = randn({2, 3, 3});
  lstm.eval();
  const Tensor a = lstm.forward(x), b = lstm.forward(x);
  EXPECT_CLOSE(a, b, 0, 0);
  lstm.train();
  const Tensor c = lstm.forward(x);
  EXPECT_FALSE(testing::all_close(c, a, 1e-6, 1e-6));
  const uint64_t used = drops.offset();
  EXPECT_GT(used, 0u);
  drops.set_state(8, 0);
  EXPECT_CLOSE(lstm.forward(x), c, 0, 0);  // reproducible from the generator
}

TEST(RnnLayers, BadInputsNameTheLayer) {
  LSTM lstm(3, 4, RnnOptions{.num_layers = 2, .batch_first = true});
  EXPECT_IRIS_ERROR(lstm.forward(zeros({2, 5, 4})), "LSTM(3, 4");
  EXPECT_IRIS_ERROR(lstm.forward(zeros({5, 3})), "expected input");
  EXPECT_IRIS_ERROR(lstm.forward(zeros({2, 5, 3}), {zeros({1, 2, 4}), Tensor()}),
                    "h0 float32[1, 2, 4]");
  EXPECT_IRIS_ERROR(lstm.forward(zeros({2, 5, 3}), {}, Tensor::from_vector<int64_t>({6, 1}, {2})),
                    "length 6 outside [0, 5]");
  EXPECT_IRIS_ERROR(lstm.forward(zeros({2, 5, 3}), {}, Tensor::from_vector<int64_t>({1}, {1})),
                    "lengths must be int32/int64 [2]");
  GRU gru(3, 4);
  EXPECT_IRIS_ERROR(gru.forward(zeros({5, 2, 3}), zeros({1, 2, 5})), "GRU(3, 4");
  EXPECT_IRIS_ERROR(LSTM(3, 4, RnnOptions{.num_layers = 0}), "num_layers");
  LSTMCell cell(3, 4);
  EXPECT_IRIS_ERROR(cell.forward(zeros({2, 5})), "lstm_cell");
}

}  // namespace
}  // namespace iris::nn
