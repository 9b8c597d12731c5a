// Backend comparison for the index family: cat (stack, split, chunk), index_select /
// index_add, gather / scatter_add, forward and backward, and index validation, on the CUDA
// device (emulated in CI, real under `ctest -L cuda`) against the CPU. Copies are exact
// and both backends add repeated indices in the same (increasing position) order, so
// every result is compared exactly, repeated indices included.
#include <random>
#include <vector>

#include "autograd/index_ops.h"
#include "kernels/index.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

Tensor cpu(const Tensor& t) { return t.to(Device::cpu()); }

// int64 indices uniform in [0, limit), with repeats.
Tensor random_index(const Shape& shape, int64_t limit, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(numel_of(shape));
  for (int64_t& e : v) e = static_cast<int64_t>(rng() % static_cast<uint64_t>(limit));
  return Tensor::from_vector(v, shape);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// f on both devices over leaf copies of `inputs` (the floating ones require grad);
// the output and every input gradient must agree exactly.
void compare(const char* what, const std::vector<Tensor>& inputs, const Fn& f, uint64_t seed) {
  SCOPED_TRACE(what);
  std::vector<Tensor> in[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : kCuda;
    for (const Tensor& t : inputs) {
      const bool grad = is_floating(t.dtype());
      in[d].push_back(grad ? t.to(dev).detach().set_requires_grad(true) : t.to(dev));
    }
  }
  const Tensor yc = f(in[0]), yg = f(in[1]);
  ASSERT_TRUE(yg.device().is_cuda());
  EXPECT_CLOSE(cpu(yg), yc, 0, 0) << "forward";
  if (!is_floating(yc.dtype())) return;
  const Tensor dy = randn_seeded(yc.shape(), seed, yc.dtype());
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!in[0][i].requires_grad() || !in[0][i].grad().defined()) continue;
    EXPECT_CLOSE(cpu(in[1][i].grad()), in[0][i].grad(), 0, 0) << "grad of input " << i;
  }
}

TEST(BackendIndex, CatStackSplitChunk) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor a = randn_seeded({2, 3, 4}, 1, dt), b = randn_seeded({2, 4, 5}, 2, dt);
    const Tensor e = Tensor::empty({2, 0, 4}, dt), c = randn_seeded({2, 1, 4}, 3, dt);
    compare(
        "cat dim 1, transposed input", {a, b, e, c},
        [](const std::vector<Tensor>& t) {
          return cat({t[0], t[1].transpose(1, 2), t[2], t[3]}, 1);
        },
        4);
    compare(
        "cat dim 0 and 2", {a, c},
        [](const std::vector<Tensor>& t) {
          const Tensor m = cat({t[1], t[1], t[1]}, 1);
          return cat({cat({t[0], t[0]}, 0), cat({m, m}, 0)}, 2);
        },
        5);
    compare(
        "stack", {a, randn_seeded({2, 3, 4}, 6, dt)},
        [](const std::vector<Tensor>& t) {
          return stack({t[0], t[1]}, 1);
        },
        7);
    compare(
        "split / chunk grads through cat", {randn_seeded({5, 7, 3}, 8, dt)},
        [](const std::vector<Tensor>& t) {
          const std::vector<Tensor> s = split(t[0], 3, 1);
          const std::vector<Tensor> ch = chunk(t[0], 2, 0);
          return cat({mul(s[2], s[0].narrow(1, 0, 1)), ch[1].narrow(1, 0, 1)}, 0);
        },
        9);
  }
  // Other dtypes move bits: int64, uint8, bfloat16.
  const Tensor i = Tensor::from_vector<int64_t>({1, -2, 3, 4, 5, 6}, {2, 3});
  compare(
      "cat int64", {i},
      [](const std::vector<Tensor>& t) {
        return cat({t[0], t[0].t().reshape({2, 3})}, 1);
      },
      0);
  const Tensor u = Tensor::from_vector<uint8_t>({1, 2, 3, 250, 0, 9}, {3, 2});
  compare(
      "cat uint8", {u},
      [](const std::vector<Tensor>& t) {
        return cat({t[0], t[0]}, 0);
      },
      0);
  const Tensor h = randn_seeded({3, 5}, 10, DType::f32).to(DType::bf16);
  EXPECT_CLOSE(cpu(cat({h.to(kCuda), h.to(kCuda)}, 1)).to(DType::f32),
               cat({h, h}, 1).to(DType::f32), 0, 0);
}

TEST(BackendIndex, IndexSelectAndIndexAdd) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 20;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({4, 7, 5}, seed++, dt);
    for (int64_t dim : {0, 1, 2}) {
      const Tensor idx = random_index({11}, x.size(dim), seed++);  // repeats: grads accumulate
      compare(
          "index_select", {x, idx},
          [dim](const std::vector<Tensor>& t) { return index_select(t[0], dim, t[1]); }, seed++);
    }
    compare(
        "index_select, transposed input", {x, random_index({9}, 4, seed++)},
        [](const std::vector<Tensor>& t) { return index_select(t[0].transpose(0, 2), 2, t[1]); },
        seed++);
    const Tensor base = randn_seeded({6, 5}, seed++, dt);
    compare(
        "index_add dim 0", {base, random_index({9}, 6, seed++), randn_seeded({9, 5}, seed++, dt)},
        [](const std::vector<Tensor>& t) { return index_add(t[0], 0, t[1], t[2]); }, seed++);
    compare(
        "index_add dim 1", {base, random_index({8}, 5, seed++), randn_seeded({6, 8}, seed++, dt)},
        [](const std::vector<Tensor>& t) { return index_add(t[0], 1, t[1], t[2]); }, seed++);
  }
  const Tensor xi = Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6}, {3, 2});
  compare(
      "index_select int64", {xi, random_index({5}, 3, 30)},
      [](const std::vector<Tensor>& t) { return index_select(t[0], 0, t[1]); }, 0);
  compare(
      "index_add int64",
      {xi, random_index({4}, 2, 31),
       Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4})},
      [](const std::vector<Tensor>& t) { return index_add(t[0], 1, t[1], t[2]); }, 0);
}

TEST(BackendIndex, GatherAndScatterAdd) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 40;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = randn_seeded({4, 6, 5}, seed++, dt);
    // Index smaller than x in the other dims, larger along dim: repeats in the backward.
    compare(
        "gather dim 1", {x, random_index({3, 9, 4}, 6, seed++)},
        [](const std::vector<Tensor>& t) { return gather(t[0], 1, t[1]); }, seed++);
    compare(
        "gather dim 0", {x, random_index({7, 5, 5}, 4, seed++)},
        [](const std::vector<Tensor>& t) { return gather(t[0], 0, t[1]); }, seed++);
    compare(
        "gather dim 2, transposed input", {x, random_index({5, 2, 8}, 4, seed++)},
        [](const std::vector<Tensor>& t) { return gather(t[0].transpose(0, 2), 2, t[1]); }, seed++);
    // Few fibres: the per-destination scan kernel.
    compare(
        "scatter_add dim 1",
        {randn_seeded({5, 6, 7}, seed++, dt), random_index({4, 8, 6}, 6, seed++),
         randn_seeded({5, 8, 7}, seed++, dt)},
        [](const std::vector<Tensor>& t) { return scatter_add(t[0], 1, t[1], t[2]); }, seed++);
    compare(
        "scatter_add 1-D",
        {randn_seeded({10}, seed++, dt), random_index({40}, 10, seed++),
         randn_seeded({40}, seed++, dt)},
        [](const std::vector<Tensor>& t) { return scatter_add(t[0], 0, t[1], t[2]); }, seed++);
  }
  // 2 x 1100 = 2200 fibres: the per-fibre kernel.
  compare(
      "scatter_add, many fibres",
      {randn_seeded({2, 3, 1100}, 60, DType::f32), random_index({2, 5, 1100}, 3, 61),
       randn_seeded({2, 5, 1100}, 62, DType::f32)},
      [](const std::vector<Tensor>& t) { return scatter_add(t[0], 1, t[1], t[2]); }, 63);
  const Tensor xi = Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  compare(
      "scatter_add int64",
      {xi, random_index({2, 4}, 3, 64),
       Tensor::from_vector<int64_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4})},
      [](const std::vector<Tensor>& t) { return scatter_add(t[0], 1, t[1], t[2]); }, 0);
}

TEST(BackendIndex, OutOfRangeIndicesNameTheFirstBadPosition) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({3, 5}, 70, DType::f32).to(kCuda);
  const Tensor bad = Tensor::from_vector<int64_t>({0, 1, 7, -1, 9}, {5}).to(kCuda);
  EXPECT_IRIS_ERROR(
      index_select(x, 1, bad),
      "index_select: index 7 is out of range for dim 1 of size 5 (at flat position 2");
  EXPECT_IRIS_ERROR(index_add(x, 1, bad, zeros({3, 5}, DType::f32, kCuda)),
                    "index_add: index 7 is out of range for dim 1 of size 5 (at flat position 2");
  const Tensor bad2 = Tensor::from_vector<int64_t>({0, 1, 2, 0, -3, 1}, {2, 3}).to(kCuda);
  EXPECT_IRIS_ERROR(gather(x, 0, bad2),
                    "gather: index -3 is out of range for dim 0 of size 3 (at flat position 4");
  EXPECT_IRIS_ERROR(
      scatter_add(x, 0, bad2, x),
      "scatter_add: index -3 is out of range for dim 0 of size 3 (at flat position 4");
  // The kernel-level index_add (it buckets on the host) checks too.
  EXPECT_IRIS_ERROR(kernels::index_add_table().get(kCuda)(x.clone(), 1, bad, x),
                    "index_add: index 7");
}

}  // namespace
}  // namespace iris
