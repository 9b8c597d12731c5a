// cat / stack / split / chunk / index_select / index_add / gather / scatter_add against
// plain double-precision loops, float64 gradchecks, and bad-input errors.
#include <numeric>

#include "autograd/index_ops.h"
#include "core/parallel.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

// ---- naive helpers: coordinates of row-major positions ----

Shape unravel(int64_t flat, const Shape& shape) {
  Shape c(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    c[d] = flat % shape[d];
    flat /= shape[d];
  }
  return c;
}

int64_t ravel(const Shape& c, const Shape& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + c[d];
  return flat;
}

Tensor from_doubles(const std::vector<double>& v, const Shape& shape, DType dt) {
  return Tensor::from_vector(v, shape).to(dt);
}

Tensor indices(const std::vector<int64_t>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

// Random indices in [0, limit) from a fixed seed (many repeats when limit is small).
Tensor random_indices(const Shape& shape, int64_t limit, uint64_t seed) {
  const std::vector<double> u = randn_seeded(shape, seed).to_vector<double>();
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = static_cast<int64_t>(std::abs(u[i]) * 1000) % limit;
  return indices(v, shape);
}

// Reference cat in doubles.
std::vector<double> ref_cat(const std::vector<Tensor>& ts, int64_t d, const Shape& out_shape) {
  std::vector<double> out(numel_of(out_shape));
  int64_t base = 0;
  for (const Tensor& t : ts) {
    const std::vector<double> v = t.to_vector<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      Shape c = unravel(i, t.shape());
      c[d] += base;
      out[ravel(c, out_shape)] = v[i];
    }
    base += t.size(d);
  }
  return out;
}

class IndexDtypes : public ::testing::TestWithParam<DType> {};

// ---- cat / stack ----

TEST_P(IndexDtypes, CatEveryDimMixedContiguity) {
  const DType dt = GetParam();
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    Shape s0 = {3, 5, 7}, s1 = {3, 5, 7}, s2 = {3, 5, 7};
    s0[d] = 2, s1[d] = 5, s2[d] = 1;
    const Tensor a = randn_seeded(s0, 1, dt);
    // A transposed view and a sliced view with the same logical shapes.
    Shape s1t = s1;
    std::swap(s1t[0], s1t[2]);
    const Tensor b = randn_seeded(s1t, 2, dt).transpose(0, 2);
    Shape s2big = s2;
    s2big[1] += 3;
    const Tensor c = randn_seeded(s2big, 3, dt).slice(1, 1, 1 + s2[1]);
    ASSERT_FALSE(b.is_contiguous());
    const Tensor out = cat({a, b, c}, dim);
    Shape os = s0;
    os[d] = 8;
    ASSERT_EQ(out.shape(), os);
    EXPECT_CLOSE(out, from_doubles(ref_cat({a, b, c}, d, os), os, dt), 0, 0);  // exact copy
  }
}

TEST_P(IndexDtypes, StackEveryDim) {
  const DType dt = GetParam();
  const Tensor a = randn_seeded({4, 3}, 4, dt), b = randn_seeded({3, 4}, 5, dt).t();
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const Tensor out = stack({a, b}, dim);
    Shape os = {4, 3};
    os.insert(os.begin() + d, 2);
    ASSERT_EQ(out.shape(), os);
    const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    std::vector<double> ref(numel_of(os));
    for (int64_t i = 0; i < numel_of(os); ++i) {
      Shape c = unravel(i, os);
      const int64_t which = c[d];
      c.erase(c.begin() + d);
      ref[i] = (which == 0 ? va : vb)[ravel(c, {4, 3})];
    }
    EXPECT_CLOSE(out, from_doubles(ref, os, dt), 0, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(FloatTypes, IndexDtypes, ::testing::Values(DType::f32, DType::f64));

TEST(Cat, IntegerAndLegacyEmptyAndLarge) {
  const Tensor a = indices({1, 2, 3, 4}, {2, 2}), b = indices({5, 6}, {2, 1});
  EXPECT_EQ(cat({a, b}, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 5, 3, 4, 6}));
  // 1-D empty tensors are skipped whatever the others' rank (PyTorch's legacy rule).
  const Tensor e = Tensor::empty({0});
  const Tensor x = randn_seeded({2, 3}, 6, DType::f32);
  EXPECT_EQ(cat({e, x, e}, 1).shape(), (Shape{2, 3}));
  EXPECT_EQ(cat({e, e}, 0).shape(), (Shape{0}));
  // Enough bytes for several threads, pieces not aligned to anything.
  const Tensor p = randn_seeded({3, 10007}, 7, DType::f32),
               q = randn_seeded({3, 333}, 8, DType::f32);
  const Tensor out = cat({p, q}, 1);
  EXPECT_CLOSE(out, from_doubles(ref_cat({p, q}, 1, {3, 10340}), {3, 10340}, DType::f32), 0, 0);
  const Tensor r = randn_seeded({70001}, 9, DType::f64), s = randn_seeded({3}, 10, DType::f64);
  EXPECT_CLOSE(cat({s, r, s}, 0), from_doubles(ref_cat({s, r, s}, 0, {70007}), {70007}, DType::f64),
               0, 0);
}

TEST(Cat, Gradcheck) {
  const Tensor a = param({2, 3, 4}, 11), b = param({2, 4, 5}, 12), c = param({2, 1, 4}, 13);
  // b enters transposed (non-contiguous); cat along the middle dim, given as a negative one.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cat({in[0], in[1].transpose(1, 2), in[2]}, -2)};
      },
      {a, b, c});
  const Tensor e = param({0}, 14), f = param({3, 2}, 15);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cat({in[0], in[1], in[1]}, 0)};
      },
      {e, f});
}

TEST(Stack, Gradcheck) {
  const Tensor a = param({3, 2}, 16), b = param({2, 3}, 17);
  for (int64_t dim : {0, 1, 2, -1})
    EXPECT_GRADCHECK(
        [dim](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{stack({in[0], in[1].t(), in[0]}, dim)};
        },
        {a, b});
}

// ---- split / chunk ----

TEST(Split, SizesViewsAndValues) {
  const Tensor x = randn_seeded({4, 7, 3}, 18, DType::f32);
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const std::vector<Tensor> pieces = split(x, 2, dim);
    const int64_t n = x.size(d);
    ASSERT_EQ(static_cast<int64_t>(pieces.size()), (n + 1) / 2);
    for (size_t i = 0; i < pieces.size(); ++i) {
      const int64_t start = static_cast<int64_t>(i) * 2;
      EXPECT_EQ(pieces[i].storage(), x.storage());  // a view
      EXPECT_CLOSE(pieces[i], x.narrow(d, start, std::min<int64_t>(2, n - start)), 0, 0);
    }
  }
  const std::vector<Tensor> s = split(x, std::vector<int64_t>{1, 0, 6}, -2);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].shape(), (Shape{4, 0, 3}));
  EXPECT_CLOSE(s[2], x.narrow(1, 1, 6), 0, 0);
  // Splitting a non-contiguous view keeps its strides.
  const std::vector<Tensor> t = split(x.transpose(0, 2), 2, 0);
  EXPECT_CLOSE(t[1], x.transpose(0, 2).narrow(0, 2, 1), 0, 0);
  EXPECT_EQ(split(Tensor::empty({0, 2}), 3, 0).size(), 1u);
}

TEST(Chunk, MatchesPyTorchCounts) {
  const Tensor x = randn_seeded({5, 6}, 19, DType::f32);
  auto sizes = [](const std::vector<Tensor>& ps, int64_t d) {
    std::vector<int64_t> s;
    for (const Tensor& p : ps) s.push_back(p.size(d));
    return s;
  };
  EXPECT_EQ(sizes(chunk(x, 3, 0), 0), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(sizes(chunk(x, 4, 1), 1), (std::vector<int64_t>{2, 2, 2}));  // fewer than asked
  EXPECT_EQ(sizes(chunk(x, 1, -1), 1), (std::vector<int64_t>{6}));
  EXPECT_EQ(sizes(chunk(x, 9, 0), 0), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(sizes(chunk(Tensor::empty({0}), 3, 0), 0), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_CLOSE(chunk(x, 3, 1)[2], x.narrow(1, 4, 2), 0, 0);
}

TEST(Split, Gradcheck) {
  const Tensor x = param({3, 7}, 20);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return split(in[0], 3, 1); }, {x});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return split(in[0].t(), std::vector<int64_t>{2, 0, 5}, 0);
      },
      {x});
  // Only some pieces reach the loss: the others' gradients are zero.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const std::vector<Tensor> p = chunk(in[0], 3, 0);
        return std::vector<Tensor>{mul(p[1], p[1])};
      },
      {x});
}

// ---- index_select / index_add ----

TEST_P(IndexDtypes, IndexSelectEveryDimRepeated) {
  const DType dt = GetParam();
  const Tensor x = randn_seeded({5, 3, 6}, 21, dt).transpose(0, 2);  // [6, 3, 5], strided
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const Tensor idx = indices({2, 0, 2, 2, 1}, {5});
    const Tensor out = index_select(x, dim, idx);
    Shape os = x.shape();
    os[d] = 5;
    ASSERT_EQ(out.shape(), os);
    const std::vector<double> vx = x.to_vector<double>();
    const std::vector<int64_t> vi = idx.to_vector<int64_t>();
    std::vector<double> ref(numel_of(os));
    for (int64_t i = 0; i < numel_of(os); ++i) {
      Shape c = unravel(i, os);
      c[d] = vi[c[d]];
      ref[i] = vx[ravel(c, x.shape())];
    }
    EXPECT_CLOSE(out, from_doubles(ref, os, dt), 0, 0);
  }
}

TEST(IndexSelect, ScalarIndexLargeAndInteger) {
  const Tensor x = randn_seeded({4, 3}, 22, DType::f32);
  EXPECT_EQ(index_select(x, 1, indices({2}, {})).shape(), (Shape{4, 1}));
  EXPECT_EQ(index_select(Tensor::scalar(5.0), 0, indices({0}, {1})).shape(), (Shape{}));
  EXPECT_EQ(index_select(indices({7, 8, 9}, {3}), 0, indices({2, 2, 0}, {3})).to_vector<int64_t>(),
            (std::vector<int64_t>{9, 9, 7}));
  // A strided index and an empty one.
  EXPECT_EQ(index_select(x, 0, indices({3, 9, 1, 9}, {2, 2}).select(1, 0)).shape(), (Shape{2, 3}));
  EXPECT_EQ(index_select(x, 0, indices({}, {0})).shape(), (Shape{0, 3}));
  // Enough rows for the pool.
  const Tensor big = randn_seeded({300, 257}, 23, DType::f32);
  const Tensor idx = random_indices({1001}, 300, 24);
  const Tensor out = index_select(big, 0, idx);
  const std::vector<double> vb = big.to_vector<double>(), vo = out.to_vector<double>();
  const std::vector<int64_t> vi = idx.to_vector<int64_t>();
  for (int64_t k = 0; k < 1001; k += 97)
    for (int64_t j = 0; j < 257; ++j) ASSERT_EQ(vo[k * 257 + j], vb[vi[k] * 257 + j]);
}

// Sequential float accumulation in index order: the kernel must match it bit for bit.
TEST(IndexAdd, DeterministicInIndexOrderFloat32) {
  const int64_t N = 7, K = 5000, C = 600;
  const Tensor base = randn_seeded({N, C}, 25, DType::f32);
  const Tensor src = randn_seeded({K, C}, 26, DType::f32);
  const Tensor idx = random_indices({K}, N, 27);
  const Tensor out = index_add(base, 0, idx, src);
  std::vector<float> ref = base.to_vector<float>();
  const std::vector<float> vs = src.to_vector<float>();
  const std::vector<int64_t> vi = idx.to_vector<int64_t>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < C; ++j) ref[vi[k] * C + j] += vs[k * C + j];
  EXPECT_EQ(out.to_vector<float>(), ref);
  // Run to run and whatever the pool size (different work splits).
  const int threads = num_threads();
  for (int n : {1, 3, 8}) {
    set_num_threads(n);
    EXPECT_EQ(index_add(base, 0, idx, src).to_vector<float>(), ref) << n << " threads";
  }
  set_num_threads(threads);
}

TEST(IndexAdd, EveryDimAgainstReference) {
  const Tensor x = randn_seeded({4, 3, 5}, 28, DType::f64);
  for (int64_t d = 0; d < 3; ++d) {
    const Tensor idx = indices({1, 1, 0, 2, 1, 0}, {6});
    Shape ss = x.shape();
    ss[d] = 6;
    const Tensor src = randn_seeded({ss[2], ss[1], ss[0]}, 29 + d, DType::f64).transpose(0, 2);
    const Tensor out = index_add(x, d, idx, src);
    std::vector<double> ref = x.to_vector<double>();
    const std::vector<double> vs = src.to_vector<double>();
    for (int64_t i = 0; i < numel_of(ss); ++i) {
      Shape c = unravel(i, ss);
      c[d] = idx.to_vector<int64_t>()[c[d]];
      ref[ravel(c, x.shape())] += vs[i];
    }
    EXPECT_CLOSE(out, from_doubles(ref, x.shape(), DType::f64), 1e-14, 1e-14);
  }
}

TEST(IndexSelect, GradcheckRepeatedIndices) {
  const Tensor x = param({4, 3, 2}, 32);
  const Tensor idx = indices({3, 0, 3, 3, 1}, {5});
  const Tensor small = indices({1, 0, 1, 1}, {4});
  for (int64_t dim : {0, -1})
    EXPECT_GRADCHECK(
        [&small, dim](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{index_select(in[0].transpose(0, 2), dim, small)};
        },
        {x});
  EXPECT_GRADCHECK(
      [&idx](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{index_select(in[0], 0, idx)};
      },
      {x});
}

TEST(IndexAdd, Gradcheck) {
  const Tensor x = param({4, 3}, 33), src = param({5, 3}, 34);
  const Tensor idx = indices({2, 0, 2, 2, 1}, {5});
  EXPECT_GRADCHECK(
      [&idx](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{index_add(in[0].t(), 1, idx, in[1].t())};
      },
      {x, src});
}

// ---- gather / scatter_add ----

TEST_P(IndexDtypes, GatherEveryDimSmallerIndex) {
  const DType dt = GetParam();
  const Tensor x = randn_seeded({4, 5, 6}, 35, dt);
  for (int64_t dim = -3; dim < 3; ++dim) {
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const Shape is = {3, 4, 5};  // smaller than x in every dim, longer than x along none
    const Tensor idx = random_indices({is[2], is[1], is[0]}, x.size(d), 36 + d).transpose(0, 2);
    const Tensor xs = x.transpose(1, 2).contiguous().transpose(1, 2);
    const Tensor out = gather(xs.slice(0, 0, 4), dim, idx);
    ASSERT_EQ(out.shape(), is);
    const std::vector<double> vx = x.to_vector<double>();
    const std::vector<int64_t> vi = idx.to_vector<int64_t>();
    std::vector<double> ref(numel_of(is));
    for (int64_t i = 0; i < numel_of(is); ++i) {
      Shape c = unravel(i, is);
      c[d] = vi[i];
      ref[i] = vx[ravel(c, x.shape())];
    }
    EXPECT_CLOSE(out, from_doubles(ref, is, dt), 0, 0);
  }
}

TEST(Gather, LargeInnerAndScalar) {
  const Tensor x = randn_seeded({3, 2000}, 40, DType::f32);
  const Tensor idx = random_indices({5, 1500}, 3, 41);
  const Tensor out = gather(x, 0, idx);
  const std::vector<double> vx = x.to_vector<double>(), vo = out.to_vector<double>();
  const std::vector<int64_t> vi = idx.to_vector<int64_t>();
  for (int64_t i = 0; i < 5 * 1500; ++i) ASSERT_EQ(vo[i], vx[vi[i] * 2000 + i % 1500]);
  EXPECT_EQ(gather(indices({4, 5, 6}, {3}), 0, indices({2}, {})).to_vector<int64_t>(),
            (std::vector<int64_t>{6}));
}

TEST_P(IndexDtypes, ScatterAddEveryDimLargerSource) {
  const DType dt = GetParam();
  const Tensor x = randn_seeded({4, 5, 6}, 42, dt);
  for (int64_t d = 0; d < 3; ++d) {
    const Shape is = {3, 4, 5};
    const Tensor idx = random_indices(is, x.size(d), 43 + d);
    const Tensor src = randn_seeded({5, 6, 7}, 46 + d, dt).slice(2, 1, 7);  // [5, 6, 6] strided
    const Tensor out = scatter_add(x.t().contiguous().t(), d, idx, src);
    std::vector<double> ref = x.to_vector<double>();
    const std::vector<double> vs = src.to_vector<double>();
    const std::vector<int64_t> vi = idx.to_vector<int64_t>();
    for (int64_t i = 0; i < numel_of(is); ++i) {
      Shape c = unravel(i, is);
      const double v = vs[ravel(c, src.shape())];
      c[d] = vi[i];
      ref[ravel(c, x.shape())] += v;
    }
    const double tol = dt == DType::f32 ? 1e-6 : 1e-14;
    EXPECT_CLOSE(out, from_doubles(ref, x.shape(), dt), tol, tol);
  }
}

TEST(ScatterAdd, DeterministicFloat32) {
  const Tensor x = zeros({5, 700});
  const Tensor idx = random_indices({4000, 700}, 5, 49);
  const Tensor src = randn_seeded({4000, 700}, 50, DType::f32);
  std::vector<float> ref = x.to_vector<float>();
  const std::vector<float> vs = src.to_vector<float>();
  const std::vector<int64_t> vi = idx.to_vector<int64_t>();
  for (int64_t k = 0; k < 4000; ++k)
    for (int64_t j = 0; j < 700; ++j) ref[vi[k * 700 + j] * 700 + j] += vs[k * 700 + j];
  EXPECT_EQ(scatter_add(x, 0, idx, src).to_vector<float>(), ref);
  const int threads = num_threads();
  for (int n : {1, 3, 8}) {
    set_num_threads(n);
    EXPECT_EQ(scatter_add(x, 0, idx, src).to_vector<float>(), ref) << n << " threads";
  }
  set_num_threads(threads);
}

TEST(Gather, Gradcheck) {
  const Tensor x = param({4, 3, 5}, 51);
  for (int64_t d = 0; d < 3; ++d) {
    const Tensor idx = random_indices({3, 3, 4}, x.size(d), 52 + d);  // repeats likely
    EXPECT_GRADCHECK(
        [&idx, d](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{gather(in[0], d, idx)};
        },
        {x});
  }
}

TEST(ScatterAdd, Gradcheck) {
  const Tensor x = param({4, 5}, 55), src = param({3, 6}, 56), src_same = param({3, 4}, 57);
  const Tensor idx = indices({0, 3, 3, 1, 0, 0, 3, 3, 2, 2, 2, 1}, {3, 4});
  EXPECT_GRADCHECK(
      [&idx](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{scatter_add(in[0], 0, idx, in[1])};
      },
      {x, src});
  EXPECT_GRADCHECK(
      [&idx](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{scatter_add(in[0], -1, idx, in[1])};
      },
      {x, src_same});
}

// ---- bad input ----

TEST(IndexErrors, OutOfRangeIndicesNameOpAndIndex) {
  const Tensor x = randn_seeded({3, 4}, 58, DType::f32);
  EXPECT_IRIS_ERROR(index_select(x, 0, indices({0, 3}, {2})), "index_select: index 3");
  EXPECT_IRIS_ERROR(index_select(x, 1, indices({-1}, {1})), "index_select: index -1");
  EXPECT_IRIS_ERROR(index_add(x, 1, indices({4}, {1}), zeros({3, 1})), "index_add: index 4");
  EXPECT_IRIS_ERROR(gather(x, 1, indices({0, 1, 9, 2}, {2, 2})), "gather: index 9");
  EXPECT_IRIS_ERROR(gather(x, 1, indices({0, -2}, {1, 2})), "gather: index -2");
  EXPECT_IRIS_ERROR(scatter_add(x, 0, indices({1, 7}, {1, 2}), zeros({1, 2})),
                    "scatter_add: index 7");
  // The first bad position is reported, however the range is split over threads.
  std::vector<int64_t> many(100000, 1);
  many[77777] = 5;
  many[99999] = 6;
  EXPECT_IRIS_ERROR(index_select(x, 0, indices(many, {100000})), "flat position 77777");
}

TEST(IndexErrors, ShapesDtypesAndArguments) {
  const Tensor x = randn_seeded({3, 4}, 59, DType::f32);
  EXPECT_IRIS_ERROR(cat({}, 0), "cat");
  EXPECT_IRIS_ERROR(cat({x, randn_seeded({2, 3}, 60, DType::f32)}, 0), "cat: sizes must match");
  EXPECT_IRIS_ERROR(cat({x, x.to(DType::f64)}, 0), "cat: tensors must share dtype");
  EXPECT_IRIS_ERROR(cat({x, x}, 2), "cat");
  EXPECT_IRIS_ERROR(cat({Tensor::scalar(1.0)}, 0), "cat: zero-dimensional");
  EXPECT_IRIS_ERROR(stack({x, x.t()}, 0), "stack: expects tensors of equal size");
  EXPECT_IRIS_ERROR(stack({x}, 3), "stack");
  EXPECT_IRIS_ERROR(split(x, 0, 0), "split: split_size must be positive");
  EXPECT_IRIS_ERROR(split(x, std::vector<int64_t>{1, 1}, 0), "split: sizes [1, 1] do not sum to 3");
  EXPECT_IRIS_ERROR(chunk(x, 0, 0), "chunk: chunks must be positive");
  EXPECT_IRIS_ERROR(index_select(x, 0, Tensor::from_vector<int32_t>({0}, {1})),
                    "index_select: index must be int64");
  EXPECT_IRIS_ERROR(index_select(x, 0, indices({0, 1}, {1, 2})), "index_select: index must have");
  EXPECT_IRIS_ERROR(index_select(x, 2, indices({0}, {1})), "index_select");
  EXPECT_IRIS_ERROR(index_add(x, 0, indices({0}, {1}), zeros({2, 4})), "index_add: source");
  EXPECT_IRIS_ERROR(index_add(x, 0, indices({0}, {1}), zeros({1, 4}, DType::f64)),
                    "index_add: dtype mismatch");
  EXPECT_IRIS_ERROR(gather(x, 0, indices({0}, {1})), "gather: index int64[1] cpu must have");
  EXPECT_IRIS_ERROR(gather(x, 0, indices(std::vector<int64_t>(10, 0), {2, 5})),
                    "gather: index int64[2, 5] cpu is larger than the input");
  EXPECT_IRIS_ERROR(scatter_add(x, 0, indices({0, 0}, {1, 2}), zeros({1, 1})),
                    "scatter_add: index int64[1, 2] cpu is larger than the source");
  EXPECT_IRIS_ERROR(scatter_add(x, 0, indices(std::vector<int64_t>(5, 0), {1, 5}), zeros({1, 5})),
                    "scatter_add: index int64[1, 5] cpu is larger than the input");
}

}  // namespace
}  // namespace iris
