// Backend comparison for the fused LSTM and GRU cell kernels: the cells end to end
// (GEMMs included) and the gate kernels alone (saved activations too), forward and
// backward, on the CUDA device (emulated in CI, real under `ctest -L cuda`) against the
// CPU. B * H spans more than one block, H is not a multiple of the warp size, and the
// batched states arrive as non-dense views.
#include "autograd/rnn_ops.h"
#include "kernels/rnn.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType dt) { return dt == DType::f64 ? Tol{1e-12, 1e-12} : Tol{2e-5, 2e-5}; }

// Leaf copies of the same values on both devices.
struct Both {
  Tensor cpu, cuda;
  Both() = default;
  Both(const Tensor& v, bool grad)
      : cpu(v.detach().set_requires_grad(grad)),
        cuda(v.to(kCuda).detach().set_requires_grad(grad)) {}
  const Tensor& on(int d) const { return d == 0 ? cpu : cuda; }
};

void expect_grad(const Both& t, const Tol& tol, const char* what) {
  EXPECT_CLOSE(t.cuda.grad().to(Device::cpu()), t.cpu.grad(), tol.rtol, tol.atol) << what;
}

void compare_lstm(int64_t B, int64_t I, int64_t H, DType dt, bool batched, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "lstm B=" << B << " I=" << I << " H=" << H << " "
                                    << dtype_name(dt) << (batched ? "" : " unbatched"));
  const Tol tol = tol_for(dt);
  // Batched states are made [H, B] and reach the cell transposed: a non-dense view.
  const Shape xs = batched ? Shape{B, I} : Shape{I}, hs = batched ? Shape{H, B} : Shape{H};
  auto state = [batched](const Tensor& t) { return batched ? t.t() : t; };
  const Both x(randn_seeded(xs, seed, dt), true), h(randn_seeded(hs, seed + 1, dt), true);
  const Both c(randn_seeded(hs, seed + 2, dt), true);
  const Both wi(randn_seeded({4 * H, I}, seed + 3, dt) * 0.5, true);
  const Both wh(randn_seeded({4 * H, H}, seed + 4, dt) * 0.3, true);
  const Both bi(randn_seeded({4 * H}, seed + 5, dt), true),
      bh(randn_seeded({4 * H}, seed + 6, dt), true);
  LstmState out[2];
  for (int d = 0; d < 2; ++d)
    out[d] =
        lstm_cell(x.on(d), state(h.on(d)), state(c.on(d)), wi.on(d), wh.on(d), bi.on(d), bh.on(d));
  EXPECT_CLOSE(out[1].h.to(Device::cpu()), out[0].h, tol.rtol, tol.atol) << "h";
  EXPECT_CLOSE(out[1].c.to(Device::cpu()), out[0].c, tol.rtol, tol.atol) << "c";
  // A loss that uses both outputs, so both incoming gradients are non-trivial.
  const Tensor gh = randn_seeded(out[0].h.shape(), seed + 7, dt);
  const Tensor gc = randn_seeded(out[0].c.shape(), seed + 8, dt);
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : kCuda;
    sum(add(mul(out[d].h, gh.to(dev)), mul(out[d].c, gc.to(dev)))).backward();
  }
  const std::pair<const Both*, const char*> grads[] = {
      {&x, "dx"},     {&h, "dh"},     {&c, "dc"},    {&wi, "dw_ih"},
      {&wh, "dw_hh"}, {&bi, "db_ih"}, {&bh, "db_hh"}};
  for (const auto& [t, name] : grads) expect_grad(*t, tol, name);
}

void compare_gru(int64_t B, int64_t I, int64_t H, DType dt, bool batched, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "gru B=" << B << " I=" << I << " H=" << H << " "
                                    << dtype_name(dt) << (batched ? "" : " unbatched"));
  const Tol tol = tol_for(dt);
  // Batched states are made [H, B] and reach the cell transposed: a non-dense view.
  const Shape xs = batched ? Shape{B, I} : Shape{I}, hs = batched ? Shape{H, B} : Shape{H};
  auto state = [batched](const Tensor& t) { return batched ? t.t() : t; };
  const Both x(randn_seeded(xs, seed, dt), true), h(randn_seeded(hs, seed + 1, dt), true);
  const Both wi(randn_seeded({3 * H, I}, seed + 3, dt) * 0.5, true);
  const Both wh(randn_seeded({3 * H, H}, seed + 4, dt) * 0.3, true);
  const Both bi(randn_seeded({3 * H}, seed + 5, dt), true),
      bh(randn_seeded({3 * H}, seed + 6, dt), true);
  Tensor out[2];
  for (int d = 0; d < 2; ++d)
    out[d] = gru_cell(x.on(d), state(h.on(d)), wi.on(d), wh.on(d), bi.on(d), bh.on(d));
  EXPECT_CLOSE(out[1].to(Device::cpu()), out[0], tol.rtol, tol.atol) << "h_out";
  const Tensor g = randn_seeded(out[0].shape(), seed + 7, dt);
  out[0].backward(g);
  out[1].backward(g.to(kCuda));
  const std::pair<const Both*, const char*> grads[] = {
      {&x, "dx"}, {&h, "dh"}, {&wi, "dw_ih"}, {&wh, "dw_hh"}, {&bi, "db_ih"}, {&bh, "db_hh"}};
  for (const auto& [t, name] : grads) expect_grad(*t, tol, name);
}

TEST(BackendRnn, LstmCellMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  compare_lstm(3, 5, 37, DType::f32, true, 10);
  compare_lstm(3, 5, 37, DType::f64, true, 20);
  compare_lstm(1, 4, 9, DType::f64, false, 30);
}

TEST(BackendRnn, GruCellMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  compare_gru(3, 5, 37, DType::f32, true, 40);
  compare_gru(3, 5, 37, DType::f64, true, 50);
  compare_gru(1, 4, 9, DType::f32, false, 60);
}

// The gate kernels alone, with every saved tensor compared, on B * H = 350 > one block.
TEST(BackendRnn, GateKernelsAndSavedActivations) {
  IRIS_REQUIRE_CUDA();
  const int64_t B = 5, H = 70;
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = tol_for(dt);
    const Tensor gx = randn_seeded({B, 4 * H}, 70, dt), gh = randn_seeded({B, 4 * H}, 71, dt);
    const Tensor c = randn_seeded({B, H}, 72, dt), dh = randn_seeded({B, H}, 73, dt);
    const Tensor dc = randn_seeded({B, H}, 74, dt);
    Tensor ho[2], co[2], act[2], dg[2], dcp[2];
    Tensor hg[2], sv[2], dgx[2], dgh[2], dhp[2];
    const Tensor gx3 = gx.narrow(1, 0, 3 * H).contiguous(),
                 gh3 = gh.narrow(1, H, 3 * H).contiguous();
    for (int d = 0; d < 2; ++d) {
      const Device dev = d == 0 ? Device::cpu() : kCuda;
      auto e = [&](const Shape& s) { return Tensor::empty(s, dt, dev); };
      ho[d] = e({B, H}), co[d] = e({B, H}), act[d] = e({B, 4 * H});
      kernels::lstm_cell_forward_table().get(dev)(gx.to(dev), gh.to(dev), c.to(dev), ho[d], co[d],
                                                  act[d]);
      dg[d] = e({B, 4 * H}), dcp[d] = e({B, H});
      kernels::lstm_cell_backward_table().get(dev)(dh.to(dev), dc.to(dev), act[d], c.to(dev), co[d],
                                                   dg[d], dcp[d]);
      hg[d] = e({B, H}), sv[d] = e({B, 4 * H});
      kernels::gru_cell_forward_table().get(dev)(gx3.to(dev), gh3.to(dev), c.to(dev), hg[d], sv[d]);
      dgx[d] = e({B, 3 * H}), dgh[d] = e({B, 3 * H}), dhp[d] = e({B, H});
      kernels::gru_cell_backward_table().get(dev)(dh.to(dev), sv[d], c.to(dev), dgx[d], dgh[d],
                                                  dhp[d]);
    }
    const std::pair<Tensor*, const char*> all[] = {
        {ho, "lstm h"},        {co, "lstm c"}, {act, "lstm act"}, {dg, "lstm dgates"},
        {dcp, "lstm dc"},      {hg, "gru h"},  {sv, "gru saved"}, {dgx, "gru dgates_x"},
        {dgh, "gru dgates_h"}, {dhp, "gru dh"}};
    for (const auto& [t, name] : all)
      EXPECT_CLOSE(t[1].to(Device::cpu()), t[0], tol.rtol, tol.atol) << name;
  }
}

TEST(BackendRnn, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor i = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 8}, kCuda);
  const Tensor s = Tensor::from_vector<int32_t>({1, 2}, {1, 2}, kCuda);
  Tensor a = Tensor::empty({1, 8}, DType::i32, kCuda),
         o1 = Tensor::empty({1, 2}, DType::i32, kCuda);
  Tensor o2 = Tensor::empty({1, 2}, DType::i32, kCuda);
  EXPECT_IRIS_ERROR(kernels::lstm_cell_forward_table().get(kCuda)(i, i, s, o1, o2, a), "lstm_cell");
  EXPECT_IRIS_ERROR(kernels::gru_cell_forward_table().get(kCuda)(
                        i.narrow(1, 0, 6).contiguous(), i.narrow(1, 0, 6).contiguous(), s, o1, a),
                    "gru_cell");
}

}  // namespace
}  // namespace iris
