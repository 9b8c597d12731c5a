// lstm_cell / gru_cell against plain double loops written from torch.nn.LSTMCell /
// GRUCell's documented equations, float64 gradchecks of every input, and bad inputs.
#include <cmath>

#include "autograd/rnn_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Pre-activations x W_ih^T + b_ih (or h W_hh^T + b_hh) in doubles: [B, G*H].
std::vector<double> affine(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t B = x.size(0), I = x.size(1), G = w.size(0);
  const std::vector<double> vx = x.to_vector<double>(), vw = w.to_vector<double>();
  const std::vector<double> vb = b.defined() ? b.to_vector<double>() : std::vector<double>(G, 0.0);
  std::vector<double> out(B * G);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t g = 0; g < G; ++g) {
      double s = vb[g];
      for (int64_t k = 0; k < I; ++k) s += vx[r * I + k] * vw[g * I + k];
      out[r * G + g] = s;
    }
  return out;
}

struct LstmRef {
  std::vector<double> h, c;
};

LstmRef ref_lstm(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                 const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t B = x.size(0), H = h.size(1);
  const std::vector<double> gx = affine(x, w_ih, b_ih), gh = affine(h, w_hh, b_hh);
  const std::vector<double> vc = c.to_vector<double>();
  LstmRef r{std::vector<double>(B * H), std::vector<double>(B * H)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < H; ++j) {
      auto pre = [&](int64_t k) { return gx[b * 4 * H + k * H + j] + gh[b * 4 * H + k * H + j]; };
      const double i = sigm(pre(0)), f = sigm(pre(1)), g = std::tanh(pre(2)), o = sigm(pre(3));
      const double cn = f * vc[b * H + j] + i * g;
      r.c[b * H + j] = cn;
      r.h[b * H + j] = o * std::tanh(cn);
    }
  return r;
}

std::vector<double> ref_gru(const Tensor& x, const Tensor& h, const Tensor& w_ih,
                            const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t B = x.size(0), H = h.size(1);
  const std::vector<double> gx = affine(x, w_ih, b_ih), gh = affine(h, w_hh, b_hh);
  const std::vector<double> vh = h.to_vector<double>();
  std::vector<double> out(B * H);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < H; ++j) {
      const int64_t row = b * 3 * H;
      const double r = sigm(gx[row + j] + gh[row + j]);
      const double z = sigm(gx[row + H + j] + gh[row + H + j]);
      const double n = std::tanh(gx[row + 2 * H + j] + r * gh[row + 2 * H + j]);
      out[b * H + j] = (1 - z) * n + z * vh[b * H + j];
    }
  return out;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& s, DType dt) {
  return Tensor::from_vector(v, s).to(dt);
}

struct CellCase {
  int64_t B, I, H;
};

class RnnDtypes : public ::testing::TestWithParam<DType> {};

TEST_P(RnnDtypes, LstmCellMatchesReference) {
  const DType dt = GetParam();
  const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
  for (const CellCase& k : {CellCase{3, 5, 7}, CellCase{1, 1, 1}, CellCase{37, 19, 33}}) {
    const int64_t B = k.B, I = k.I, H = k.H;
    // x arrives transposed and h sliced: non-contiguous operands.
    const Tensor x = randn_seeded({I, B}, 1, dt).t();
    const Tensor h = randn_seeded({B, H + 2}, 2, dt).slice(1, 1, H + 1);
    const Tensor c = randn_seeded({B, H}, 3, dt);
    const Tensor w_ih = randn_seeded({4 * H, I}, 4, dt) * 0.3,
                 w_hh = randn_seeded({4 * H, H}, 5, dt) * 0.3;
    const Tensor b_ih = randn_seeded({4 * H}, 6, dt), b_hh = randn_seeded({4 * H}, 7, dt);
    const LstmState out = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
    const LstmRef ref = ref_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh);
    EXPECT_CLOSE(out.h, as_tensor(ref.h, {B, H}, dt), tol, tol);
    EXPECT_CLOSE(out.c, as_tensor(ref.c, {B, H}, dt), tol, tol);
    // Without biases.
    const LstmState nb = lstm_cell(x, h, c, w_ih, w_hh);
    const LstmRef rnb = ref_lstm(x, h, c, w_ih, w_hh, Tensor(), Tensor());
    EXPECT_CLOSE(nb.h, as_tensor(rnb.h, {B, H}, dt), tol, tol);
    EXPECT_CLOSE(nb.c, as_tensor(rnb.c, {B, H}, dt), tol, tol);
  }
}

TEST_P(RnnDtypes, GruCellMatchesReference) {
  const DType dt = GetParam();
  const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
  for (const CellCase& k : {CellCase{3, 5, 7}, CellCase{1, 1, 1}, CellCase{37, 19, 33}}) {
    const int64_t B = k.B, I = k.I, H = k.H;
    const Tensor x = randn_seeded({I, B}, 11, dt).t();
    const Tensor h = randn_seeded({B, H + 2}, 12, dt).slice(1, 1, H + 1);
    const Tensor w_ih = randn_seeded({3 * H, I}, 14, dt) * 0.3,
                 w_hh = randn_seeded({3 * H, H}, 15, dt) * 0.3;
    const Tensor b_ih = randn_seeded({3 * H}, 16, dt), b_hh = randn_seeded({3 * H}, 17, dt);
    EXPECT_CLOSE(gru_cell(x, h, w_ih, w_hh, b_ih, b_hh),
                 as_tensor(ref_gru(x, h, w_ih, w_hh, b_ih, b_hh), {B, H}, dt), tol, tol);
    EXPECT_CLOSE(gru_cell(x, h, w_ih, w_hh),
                 as_tensor(ref_gru(x, h, w_ih, w_hh, Tensor(), Tensor()), {B, H}, dt), tol, tol);
  }
}

INSTANTIATE_TEST_SUITE_P(FloatTypes, RnnDtypes, ::testing::Values(DType::f32, DType::f64));

TEST(LstmCell, UnbatchedAndZeroState) {
  const int64_t I = 4, H = 6;
  const Tensor x = randn_seeded({I}, 20), w_ih = randn_seeded({4 * H, I}, 21);
  const Tensor w_hh = randn_seeded({4 * H, H}, 22), b = randn_seeded({4 * H}, 23);
  const Tensor h = randn_seeded({H}, 24), c = randn_seeded({H}, 25);
  const LstmState u = lstm_cell(x, h, c, w_ih, w_hh, b, b);
  const LstmState bt = lstm_cell(x.unsqueeze(0), h.unsqueeze(0), c.unsqueeze(0), w_ih, w_hh, b, b);
  ASSERT_EQ(u.h.shape(), (Shape{H}));
  EXPECT_CLOSE(u.h, bt.h.squeeze(0), 0, 0);
  EXPECT_CLOSE(u.c, bt.c.squeeze(0), 0, 0);
  // Undefined states are zeros (hx=None).
  const Tensor z = zeros({1, H}, DType::f64);
  const LstmState n = lstm_cell(x.unsqueeze(0), Tensor(), Tensor(), w_ih, w_hh, b, b);
  const LstmState nz = lstm_cell(x.unsqueeze(0), z, z, w_ih, w_hh, b, b);
  EXPECT_CLOSE(n.h, nz.h, 0, 0);
  EXPECT_CLOSE(n.c, nz.c, 0, 0);
}

TEST(GruCell, UnbatchedAndZeroState) {
  const int64_t I = 4, H = 6;
  const Tensor x = randn_seeded({I}, 30), w_ih = randn_seeded({3 * H, I}, 31);
  const Tensor w_hh = randn_seeded({3 * H, H}, 32), h = randn_seeded({H}, 33);
  const Tensor out = gru_cell(x, h, w_ih, w_hh);
  ASSERT_EQ(out.shape(), (Shape{H}));
  EXPECT_CLOSE(out, gru_cell(x.unsqueeze(0), h.unsqueeze(0), w_ih, w_hh).squeeze(0), 0, 0);
  EXPECT_CLOSE(gru_cell(x, Tensor(), w_ih, w_hh), gru_cell(x, zeros({H}, DType::f64), w_ih, w_hh),
               0, 0);
}

TEST(LstmCell, GradcheckEveryInput) {
  const int64_t B = 3, I = 4, H = 5;
  const std::vector<Tensor> in = {param({B, I}, 40),     param({B, H}, 41),     param({B, H}, 42),
                                  param({4 * H, I}, 43), param({4 * H, H}, 44), param({4 * H}, 45),
                                  param({4 * H}, 46)};
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        const LstmState s = lstm_cell(t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
        return std::vector<Tensor>{s.h, s.c};
      },
      in);
  // Only h' used (c' gets a zero gradient), transposed x, no biases.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return std::vector<Tensor>{lstm_cell(t[0].t().contiguous().t(), t[1], t[2], t[3], t[4]).h};
      },
      {in[0], in[1], in[2], in[3], in[4]});
  // Unbatched, and a zero initial state.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        const LstmState s = lstm_cell(t[0], Tensor(), Tensor(), t[1], t[2], t[3], Tensor());
        return std::vector<Tensor>{s.h, s.c};
      },
      {param({I}, 47), in[3], in[4], in[5]});
}

TEST(LstmCell, GradcheckTwoSteps) {
  // The state of one step feeds the next: gradients flow through h and c twice.
  const int64_t B = 2, I = 3, H = 4;
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        const LstmState s1 = lstm_cell(t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
        const LstmState s2 = lstm_cell(t[0] * 0.5, s1.h, s1.c, t[3], t[4], t[5], t[6]);
        return std::vector<Tensor>{s2.h, s2.c};
      },
      {param({B, I}, 48), param({B, H}, 49), param({B, H}, 50), param({4 * H, I}, 51),
       param({4 * H, H}, 52), param({4 * H}, 53), param({4 * H}, 54)});
}

TEST(GruCell, GradcheckEveryInput) {
  const int64_t B = 3, I = 4, H = 5;
  const std::vector<Tensor> in = {param({B, I}, 60),     param({B, H}, 61),  param({3 * H, I}, 62),
                                  param({3 * H, H}, 63), param({3 * H}, 64), param({3 * H}, 65)};
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return std::vector<Tensor>{gru_cell(t[0], t[1], t[2], t[3], t[4], t[5])};
      },
      in);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        const Tensor h1 = gru_cell(t[0], t[1], t[2], t[3]);
        return std::vector<Tensor>{gru_cell(t[0], h1, t[2], t[3])};
      },
      {in[0], in[1], in[2], in[3]});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return std::vector<Tensor>{gru_cell(t[0], Tensor(), t[1], t[2], Tensor(), t[3])};
      },
      {param({I}, 66), in[2], in[3], in[5]});
}

TEST(RnnErrors, BadShapesAndDtypes) {
  const Tensor x = randn_seeded({2, 3}, 70), h = randn_seeded({2, 4}, 71);
  const Tensor w_ih = randn_seeded({16, 3}, 72), w_hh = randn_seeded({16, 4}, 73);
  EXPECT_IRIS_ERROR(lstm_cell(randn_seeded({2, 5}, 74), h, h, w_ih, w_hh), "lstm_cell: w_ih");
  EXPECT_IRIS_ERROR(lstm_cell(x, h, h, w_ih, randn_seeded({12, 4}, 75)), "lstm_cell: w_hh");
  EXPECT_IRIS_ERROR(lstm_cell(x, randn_seeded({3, 4}, 76), h, w_ih, w_hh), "lstm_cell: h");
  EXPECT_IRIS_ERROR(lstm_cell(x, h, randn_seeded({2, 5}, 77), w_ih, w_hh), "lstm_cell: c");
  EXPECT_IRIS_ERROR(lstm_cell(x, h, h, w_ih, w_hh, randn_seeded({15}, 78)), "lstm_cell: bias");
  EXPECT_IRIS_ERROR(lstm_cell(x.to(DType::f32), h, h, w_ih, w_hh), "lstm_cell: w_ih");
  EXPECT_IRIS_ERROR(lstm_cell(randn_seeded({2, 2, 3}, 79), h, h, w_ih, w_hh),
                    "lstm_cell: expected input");
  const Tensor g_ih = randn_seeded({12, 3}, 80), g_hh = randn_seeded({12, 4}, 81);
  EXPECT_IRIS_ERROR(gru_cell(x, h, w_ih, w_hh), "gru_cell: w_hh");
  EXPECT_IRIS_ERROR(gru_cell(x, h.t(), g_ih, g_hh), "gru_cell: h");
  EXPECT_IRIS_ERROR(gru_cell(x, h, g_ih, g_hh, Tensor(), randn_seeded({12}, 82, DType::f32)),
                    "gru_cell: bias");
  EXPECT_IRIS_ERROR(gru_cell(x, h, g_ih.t(), g_hh), "gru_cell: w_ih");
}

}  // namespace
}  // namespace iris
