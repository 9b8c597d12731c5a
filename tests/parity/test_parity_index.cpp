// Indexing/joining ops, recurrent cells and optimizer steps against PyTorch
// (cases in tests/parity/cases_index.py).
#include "autograd/index_ops.h"
#include "autograd/optim_ops.h"
#include "autograd/rnn_ops.h"
#include "tests/support/parity.h"

namespace iris::testing {
namespace {

TEST(ParityIndex, Joining) {
  for (const ParityCase* c : parity_cases("index", "cat_dim1"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{
          cat({c.in("a"), c.in("b"), c.in("c").transpose(0, 2)}, c.attr_int("dim"))};
    });
  for (const ParityCase* c : parity_cases("index", "cat_neg"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{cat({c.in("a"), c.in("b")}, c.attr_int("dim"))};
    });
  for (const ParityCase* c : parity_cases("index", "stack_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{stack({c.in("a"), c.in("b").t(), c.in("a")}, c.attr_int("dim"))};
    });
  for (const ParityCase* c : parity_cases("index", "split_sizes"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return split(c.in("x"), std::vector<int64_t>{2, 1, 4}, c.attr_int("dim"));
    });
  for (const ParityCase* c : parity_cases("index", "split_chunk"))
    EXPECT_PARITY(c, [](const ParityCase& c) { return chunk(c.in("x") * 1.5, 3, 0); });
}

TEST(ParityIndex, Indexing) {
  for (const ParityCase* c : parity_cases("index", "index_select_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{index_select(c.in("x"), c.attr_int("dim"), c.in("i"))};
    });
  for (const ParityCase* c : parity_cases("index", "index_add_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{index_add(c.in("x"), c.attr_int("dim"), c.in("i"), c.in("s"))};
    });
  for (const ParityCase* c : parity_cases("index", "gather_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{gather(c.in("x"), c.attr_int("dim"), c.in("i"))};
    });
  for (const ParityCase* c : parity_cases("index", "scatter_add_"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{scatter_add(c.in("x"), c.attr_int("dim"), c.in("i"), c.in("s"))};
    });
}

TEST(ParityIndex, RecurrentCells) {
  for (const ParityCase* c : parity_cases("index", "lstm_cell"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      const LstmState s = lstm_cell(c.in("x"), c.in("h"), c.in("c"), c.in("w_ih"), c.in("w_hh"),
                                    c.in("b_ih"), c.in("b_hh"));
      return std::vector<Tensor>{s.h, s.c};
    });
  for (const ParityCase* c : parity_cases("index", "gru_cell"))
    EXPECT_PARITY(c, [](const ParityCase& c) {
      return std::vector<Tensor>{
          gru_cell(c.in("x"), c.in("h"), c.in("w_ih"), c.in("w_hh"), c.in("b_ih"), c.in("b_hh"))};
    });
}

std::vector<Tensor> grads_of(const ParityCase& c) {
  return {c.in("g0"), c.in("g1"), c.in("g2"), c.in("g3")};
}

// Float32 state through four steps: a few ulps apart at most.
constexpr double kOptimRtol = 1e-5, kOptimAtol = 1e-6;

TEST(ParityIndex, Optimizers) {
  for (const ParityCase* c : parity_cases("index", "optim_adamw"))
    EXPECT_PARITY(
        c,
        [](const ParityCase& c) {
          const Tensor p = c.in("p").clone();
          const Tensor m = zeros_like(p), v = zeros_like(p);
          const std::vector<Tensor> grads = grads_of(c);
          for (int64_t step = 1; step <= 4; ++step)
            adamw_step({p}, {grads[step - 1]}, {m}, {v}, step, c.attr_double("lr"),
                       c.attr_double("beta1"), c.attr_double("beta2"), c.attr_double("eps"),
                       c.attr_double("weight_decay"), c.attr_bool("maximize"));
          return std::vector<Tensor>{p, m, v};
        },
        kOptimRtol, kOptimAtol);
  for (const ParityCase* c : parity_cases("index", "optim_sgd"))
    EXPECT_PARITY(
        c,
        [](const ParityCase& c) {
          const Tensor p = c.in("p").clone();
          std::vector<Tensor> buffers;
          for (const Tensor& g : grads_of(c))
            sgd_step({p}, {g}, buffers, c.attr_double("lr"), c.attr_double("momentum"),
                     c.attr_double("dampening"), c.attr_double("weight_decay"),
                     c.attr_bool("nesterov"), c.attr_bool("maximize"));
          return std::vector<Tensor>{p, buffers.at(0)};
        },
        kOptimRtol, kOptimAtol);
}

}  // namespace
}  // namespace iris::testing
