// Fused CPU attention against a naive reference that materialises the scores in fp64, for
// the forward (O, lse) and the analytic backward (dq, dk, dv); plus a finite-difference check
// of the fp64 backward and the parameter checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/attention.h"

namespace iris::cpu {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Layout {
  kBHLD,      // contiguous [B, H, L, D]
  kBLHD,      // [B, L, H, D] with padded rows and batches (gaps must stay untouched)
  kFusedQKV,  // q, k, v: views of one [B, L, 3, H, D] tensor (Lq == Lk, D == Dv); o: [B, L, H, D]
};

struct Case {
  std::string name;
  int64_t B, H, Lq, Lk, D, Dv;
  bool causal = false;
  std::vector<int32_t> q_lens = {};  // empty: no lengths
  std::vector<int32_t> k_lens = {};
  bool key_mask = false;
  Layout layout = Layout::kBHLD;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// key_mask with holes: a run in the middle, a periodic pattern, and sample 2 (if any) fully
// masked so its rows see no key.
std::vector<uint8_t> make_key_mask(int64_t B, int64_t Lk) {
  std::vector<uint8_t> mask(B * Lk, 0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < Lk; ++j) {
      const bool hole = (j >= Lk / 3 && j < Lk / 3 + 3) || (j * 7 + b * 3) % 5 == 0;
      mask[b * Lk + j] = (b == 2 || hole) && !(j == 0 && b != 2) ? 1 : 0;
    }
  }
  return mask;
}

// Where one [B, H, L, width] view lives in its buffer.
struct View {
  int64_t L, width, sb, sh, sl, offset;
  int64_t index(int64_t b, int64_t h, int64_t l, int64_t d) const {
    return offset + b * sb + h * sh + l * sl + d;
  }
};

struct Layouts {
  View q, k, v, o;
  int64_t qkv_size, o_size;  // q, k, v share one buffer (back to back unless fused)
};

Layouts make_layouts(const Case& c) {
  const int64_t B = c.B, H = c.H;
  auto bhld = [&](int64_t L, int64_t W, int64_t offset) {
    return View{L, W, H * L * W, L * W, W, offset};
  };
  auto blhd_padded = [&](int64_t L, int64_t W, int64_t offset) {
    const int64_t sl = H * W + 3;
    return View{L, W, L * sl + 5, W, sl, offset};
  };
  auto size_of = [&](const View& v) { return v.offset + B * v.sb; };
  Layouts lay;
  if (c.layout == Layout::kFusedQKV) {
    const int64_t L = c.Lq, D = c.D, sl = 3 * H * D;
    lay.q = View{L, D, L * sl, D, sl, 0};
    lay.k = View{L, D, L * sl, D, sl, H * D};
    lay.v = View{L, D, L * sl, D, sl, 2 * H * D};
    lay.o = View{L, D, L * H * D, D, H * D, 0};
    lay.qkv_size = B * L * sl;
    lay.o_size = B * L * H * D;
    return lay;
  }
  auto make = [&](int64_t L, int64_t W, int64_t offset) {
    return c.layout == Layout::kBHLD ? bhld(L, W, offset) : blhd_padded(L, W, offset);
  };
  lay.q = make(c.Lq, c.D, 0);
  lay.k = make(c.Lk, c.D, size_of(lay.q));
  lay.v = make(c.Lk, c.Dv, size_of(lay.k));
  lay.qkv_size = size_of(lay.v);
  lay.o = make(c.Lq, c.Dv, 0);
  lay.o_size = size_of(lay.o);
  return lay;
}

AttentionParams make_params(const Case& c, const Layouts& lay, const std::vector<uint8_t>& mask) {
  AttentionParams p = attention_params_bhld(c.B, c.H, c.Lq, c.Lk, c.D, c.Dv);
  p.causal = c.causal;
  p.q_lens = c.q_lens.empty() ? nullptr : c.q_lens.data();
  p.k_lens = c.k_lens.empty() ? nullptr : c.k_lens.data();
  p.key_mask = c.key_mask ? mask.data() : nullptr;
  p.q_sb = lay.q.sb, p.q_sh = lay.q.sh, p.q_sl = lay.q.sl;
  p.k_sb = lay.k.sb, p.k_sh = lay.k.sh, p.k_sl = lay.k.sl;
  p.v_sb = lay.v.sb, p.v_sh = lay.v.sh, p.v_sl = lay.v.sl;
  p.o_sb = lay.o.sb, p.o_sh = lay.o.sh, p.o_sl = lay.o.sl;
  return p;
}

// Dense fp64 [B, H, L, width] copy of a view.
template <class T>
std::vector<double> gather(const std::vector<T>& buf, const View& v, int64_t B, int64_t H) {
  std::vector<double> out(B * H * v.L * v.width);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t l = 0; l < v.L; ++l)
        for (int64_t d = 0; d < v.width; ++d)
          out[((b * H + h) * v.L + l) * v.width + d] = double(buf[v.index(b, h, l, d)]);
  return out;
}

// ---------------------------------------------------------------------------------------
// The naive reference: full score matrix per (b, h), in fp64.

struct Dense {
  int64_t B, H, Lq, Lk, D, Dv;
  std::vector<double> q, k, v, dout;  // [B, H, L, width]
};

struct Reference {
  std::vector<double> o, lse, dq, dk, dv;
};

bool key_visible(const AttentionParams& p, int64_t b, int64_t i, int64_t j) {
  const int64_t lq = p.q_lens ? p.q_lens[b] : p.Lq, lk = p.k_lens ? p.k_lens[b] : p.Lk;
  if (i >= lq || j >= lk) return false;
  if (p.key_mask && p.key_mask[b * p.Lk + j]) return false;
  return !p.causal || j <= i + (lk - lq);
}

Reference naive_attention(const AttentionParams& p, const Dense& x) {
  const int64_t B = x.B, H = x.H, Lq = x.Lq, Lk = x.Lk, D = x.D, Dv = x.Dv;
  Reference r;
  r.o.assign(B * H * Lq * Dv, 0.0);
  r.lse.assign(B * H * Lq, -kInf);
  r.dq.assign(B * H * Lq * D, 0.0);
  r.dk.assign(B * H * Lk * D, 0.0);
  r.dv.assign(B * H * Lk * Dv, 0.0);
  std::vector<double> P(Lq * Lk), dP(Lq * Lk);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t bh = b * H + h;
      auto q = [&](int64_t i, int64_t d) { return x.q[(bh * Lq + i) * D + d]; };
      auto k = [&](int64_t j, int64_t d) { return x.k[(bh * Lk + j) * D + d]; };
      auto v = [&](int64_t j, int64_t d) { return x.v[(bh * Lk + j) * Dv + d]; };
      auto dout = [&](int64_t i, int64_t d) { return x.dout[(bh * Lq + i) * Dv + d]; };
      std::fill(P.begin(), P.end(), 0.0);
      for (int64_t i = 0; i < Lq; ++i) {
        double m = -kInf;
        std::vector<double> s(Lk, -kInf);
        for (int64_t j = 0; j < Lk; ++j) {
          if (!key_visible(p, b, i, j)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q(i, d) * k(j, d);
          s[j] = p.scale * dot;
          m = std::max(m, s[j]);
        }
        if (m == -kInf) continue;  // no visible key: o = 0, lse = -inf, no gradient
        double l = 0;
        for (int64_t j = 0; j < Lk; ++j) l += s[j] == -kInf ? 0.0 : std::exp(s[j] - m);
        r.lse[bh * Lq + i] = m + std::log(l);
        for (int64_t j = 0; j < Lk; ++j) {
          P[i * Lk + j] = s[j] == -kInf ? 0.0 : std::exp(s[j] - r.lse[bh * Lq + i]);
          for (int64_t d = 0; d < Dv; ++d) r.o[(bh * Lq + i) * Dv + d] += P[i * Lk + j] * v(j, d);
        }
      }
      // dV = P^T dO; dP = dO V^T; dS = P (dP - rowsum(P dP)); dQ = scale dS K; dK = scale dS^T Q.
      for (int64_t i = 0; i < Lq; ++i) {
        double di = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < Dv; ++d) dot += dout(i, d) * v(j, d);
          dP[i * Lk + j] = dot;
          di += P[i * Lk + j] * dot;
        }
        for (int64_t j = 0; j < Lk; ++j) {
          const double pij = P[i * Lk + j];
          const double ds = pij * (dP[i * Lk + j] - di);
          for (int64_t d = 0; d < Dv; ++d) r.dv[(bh * Lk + j) * Dv + d] += pij * dout(i, d);
          for (int64_t d = 0; d < D; ++d) {
            r.dq[(bh * Lq + i) * D + d] += p.scale * ds * k(j, d);
            r.dk[(bh * Lk + j) * D + d] += p.scale * ds * q(i, d);
          }
        }
      }
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// Running the kernels on one case.

template <class T>
struct Outputs {
  std::vector<T> o, lse, dqkv;
};

template <class T>
struct Problem {
  Case c;
  Layouts lay;
  std::vector<uint8_t> mask;
  AttentionParams p;
  std::vector<T> qkv, dout;

  explicit Problem(const Case& cs)
      : c(cs), lay(make_layouts(cs)), mask(make_key_mask(cs.B, cs.Lk)) {
    p = make_params(c, lay, mask);
    std::mt19937 rng(1234);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    qkv.resize(lay.qkv_size);
    dout.resize(lay.o_size);
    for (T& x : qkv) x = T(uniform(rng));
    for (T& x : dout) x = T(uniform(rng));
    // Sharper softmax than uniform inputs give: the larger queries make a few keys dominate.
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t i = 0; i < c.Lq; ++i)
          for (int64_t d = 0; d < c.D; ++d) qkv[lay.q.index(b, h, i, d)] *= T(3);
  }

  Dense dense() const {
    return Dense{c.B,
                 c.H,
                 c.Lq,
                 c.Lk,
                 c.D,
                 c.Dv,
                 gather(qkv, lay.q, c.B, c.H),
                 gather(qkv, lay.k, c.B, c.H),
                 gather(qkv, lay.v, c.B, c.H),
                 gather(dout, lay.o, c.B, c.H)};
  }

  Outputs<T> run() const {
    constexpr T kSentinel = T(777);
    Outputs<T> r;
    r.o.assign(lay.o_size, kSentinel);
    r.lse.assign(c.B * c.H * c.Lq, kSentinel);
    r.dqkv.assign(lay.qkv_size, kSentinel);
    const T* q = qkv.data() + lay.q.offset;
    const T* k = qkv.data() + lay.k.offset;
    const T* v = qkv.data() + lay.v.offset;
    attention_forward<T>(p, q, k, v, r.o.data(), r.lse.data());
    attention_backward<T>(p, q, k, v, r.o.data(), dout.data(), r.lse.data(),
                          r.dqkv.data() + lay.q.offset, r.dqkv.data() + lay.k.offset,
                          r.dqkv.data() + lay.v.offset);
    return r;
  }
};

// max |got - want| <= rtol * max(1, max |want|) over a view; gaps of the buffer (elements
// outside every view) must still hold the sentinel.
template <class T>
void expect_view_near(const char* what, const std::vector<T>& buf, const View& view,
                      const std::vector<double>& want, int64_t B, int64_t H, double rtol) {
  const std::vector<double> got = gather(buf, view, B, H);
  double max_err = 0, max_ref = 0;
  int64_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]);
    if (!(err <= max_err)) max_err = err, worst = int64_t(i);  // NaN counts as worst
    max_ref = std::max(max_ref, std::abs(want[i]));
  }
  EXPECT_LE(max_err, rtol * std::max(1.0, max_ref))
      << what << ": worst flat index " << worst << " got " << got[worst] << " want " << want[worst]
      << " (max |ref| " << max_ref << ")";
}

template <class T>
void expect_gaps_untouched(const char* what, const std::vector<T>& buf,
                           const std::vector<const View*>& views, int64_t B, int64_t H) {
  std::vector<bool> covered(buf.size(), false);
  for (const View* v : views)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t l = 0; l < v->L; ++l)
          for (int64_t d = 0; d < v->width; ++d) covered[v->index(b, h, l, d)] = true;
  int64_t touched = 0;
  for (size_t i = 0; i < buf.size(); ++i) touched += !covered[i] && buf[i] != T(777);
  EXPECT_EQ(touched, 0) << what << ": elements outside the views were written";
}

template <class T>
void expect_matches_reference(const Problem<T>& pr, const Outputs<T>& run, const Reference& ref,
                              double rtol) {
  const Case& c = pr.c;
  const Layouts& lay = pr.lay;
  expect_view_near("o", run.o, lay.o, ref.o, c.B, c.H, rtol);
  expect_view_near("dq", run.dqkv, lay.q, ref.dq, c.B, c.H, rtol);
  expect_view_near("dk", run.dqkv, lay.k, ref.dk, c.B, c.H, rtol);
  expect_view_near("dv", run.dqkv, lay.v, ref.dv, c.B, c.H, rtol);
  expect_gaps_untouched("o", run.o, {&lay.o}, c.B, c.H);
  expect_gaps_untouched("dq/dk/dv", run.dqkv, {&lay.q, &lay.k, &lay.v}, c.B, c.H);
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    if (ref.lse[i] == -kInf) {
      EXPECT_EQ(double(run.lse[i]), -kInf) << "lse[" << i << "]";
    } else {
      EXPECT_NEAR(double(run.lse[i]), ref.lse[i], rtol * std::max(1.0, std::abs(ref.lse[i])))
          << "lse[" << i << "]";
    }
  }
}

template <class T>
bool bitwise_equal(const std::vector<T>& x, const std::vector<T>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

class ThreadsGuard {
 public:
  explicit ThreadsGuard(int n) : saved_(num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved_); }

 private:
  int saved_;
};

class IsaGuard {
 public:
  ~IsaGuard() { detail::attention_force_isa(nullptr); }
};

// Every ISA build of T's tile code, each with 1 and 2 threads, against the reference; the
// thread count must not change a single bit.
template <class T>
void check_case(const Case& c, double rtol) {
  const Problem<T> pr(c);
  const Reference ref = naive_attention(pr.p, pr.dense());
  std::vector<const char*> isas = {"generic"};
  if (std::is_same_v<T, float> && detail::attention_force_isa("avx512")) isas.push_back("avx512");
  IsaGuard isa_guard;
  for (const char* isa : isas) {
    ASSERT_TRUE(detail::attention_force_isa(std::is_same_v<T, float> ? isa : nullptr));
    Outputs<T> one_thread;
    {
      ThreadsGuard threads(1);
      one_thread = pr.run();
    }
    SCOPED_TRACE(std::string("isa ") + isa);
    expect_matches_reference(pr, one_thread, ref, rtol);
    ThreadsGuard threads(2);
    const Outputs<T> two_threads = pr.run();
    EXPECT_TRUE(bitwise_equal(one_thread.o, two_threads.o) &&
                bitwise_equal(one_thread.lse, two_threads.lse) &&
                bitwise_equal(one_thread.dqkv, two_threads.dqkv))
        << "results differ between 1 and 2 threads";
  }
}

std::vector<Case> all_cases() {
  using L = Layout;
  return {
      {"self_L17_D32", 2, 3, 17, 17, 32, 32},
      {"self_L1", 1, 1, 1, 1, 8, 8},
      {"self_L3_D8", 2, 2, 3, 3, 8, 8},
      {"self_L65_D64", 2, 2, 65, 65, 64, 64},
      {"causal_square_L65", 2, 2, 65, 65, 64, 64, true},
      {"causal_square_L130", 1, 2, 130, 130, 32, 32, true},
      {"causal_L300_lens_mask", 2, 1, 300, 300, 16, 16, true, {300, 270}, {300, 290}, true},
      {"causal_q_shorter_5_over_17", 2, 2, 5, 17, 32, 32, true},
      {"causal_q_shorter_17_over_70", 1, 2, 17, 70, 16, 16, true},
      {"causal_q_longer_17_over_5", 2, 2, 17, 5, 32, 32, true},
      {"causal_q_longer_70_over_3", 1, 1, 70, 3, 8, 8, true},
      {"lens_self", 3, 2, 65, 65, 32, 32, false, {65, 17, 1}, {65, 3, 40}},
      {"lens_causal", 3, 2, 65, 65, 32, 32, true, {64, 17, 65}, {65, 3, 1}},
      {"lens_zero", 2, 1, 17, 17, 8, 8, false, {0, 17}, {17, 0}},
      {"key_mask_holes", 3, 2, 17, 70, 32, 32, false, {}, {}, true},
      {"key_mask_causal_lens", 3, 2, 65, 70, 16, 16, true, {65, 30, 2}, {70, 65, 70}, true},
      {"cross_5_over_70_D64", 4, 3, 5, 70, 64, 64},
      {"cross_5_over_70_lens_mask", 3, 3, 5, 70, 64, 64, false, {5, 3, 1}, {70, 33, 70}, true},
      {"cross_70_over_5", 2, 2, 70, 5, 32, 32},
      {"D8", 2, 2, 17, 17, 8, 8},
      {"D128", 1, 2, 65, 65, 128, 128, true},
      {"Dv_differs_32_17", 2, 2, 17, 65, 32, 17},
      {"Dv_differs_8_128", 1, 2, 3, 17, 8, 128, true},
      {"blhd_self", 2, 3, 65, 65, 64, 64, false, {}, {}, false, L::kBLHD},
      {"blhd_cross_lens_mask", 3, 2, 17, 70, 32, 17, true, {17, 5, 9}, {70, 20, 3}, true, L::kBLHD},
      {"fused_qkv", 2, 3, 65, 65, 64, 64, false, {}, {}, false, L::kFusedQKV},
      {"fused_qkv_causal_lens", 2, 3, 17, 17, 32, 32, true, {17, 9}, {17, 12}, false, L::kFusedQKV},
  };
}

class AttentionCase : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionCase, FloatMatchesReference) { check_case<float>(GetParam(), 1e-5); }

TEST_P(AttentionCase, DoubleMatchesReference) { check_case<double>(GetParam(), 1e-12); }

INSTANTIATE_TEST_SUITE_P(Attention, AttentionCase, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------------------

// The documented semantics of rows without visible keys: zero output, -inf lse, no gradient.
TEST(Attention, RowsWithoutVisibleKeysAreZero) {
  Case c{"empty_rows", 1, 1, 6, 2, 4, 4, true};
  Problem<float> pr(c);
  const Outputs<float> run = pr.run();
  for (int64_t i = 0; i < 4; ++i) {  // rows 0..3 see no key (diagonal offset 2 - 6 = -4)
    EXPECT_EQ(run.lse[i], -std::numeric_limits<float>::infinity());
    for (int64_t d = 0; d < 4; ++d) {
      EXPECT_EQ(run.o[pr.lay.o.index(0, 0, i, d)], 0.0f);
      EXPECT_EQ(run.dqkv[pr.lay.q.index(0, 0, i, d)], 0.0f);
    }
  }
  EXPECT_TRUE(std::isfinite(run.lse[4]) && std::isfinite(run.lse[5]));
}

TEST(Attention, ForwardWithoutLse) {
  Case c{"no_lse", 2, 2, 17, 17, 8, 8, true};
  Problem<float> pr(c);
  const Outputs<float> with_lse = pr.run();
  std::vector<float> o(pr.lay.o_size, 777.0f);
  attention_forward<float>(pr.p, pr.qkv.data() + pr.lay.q.offset, pr.qkv.data() + pr.lay.k.offset,
                           pr.qkv.data() + pr.lay.v.offset, o.data(), nullptr);
  EXPECT_TRUE(bitwise_equal(o, with_lse.o));
}

// Central differences of L = sum(dout * O) with respect to every element of q, k and v.
TEST(Attention, DoubleBackwardMatchesFiniteDifferences) {
  Case c{"finite_diff", 3, 2, 4, 5, 3, 2, true, {4, 3, 4}, {5, 5, 3}, true, Layout::kBLHD};
  Problem<double> pr(c);
  const Outputs<double> run = pr.run();
  auto loss = [&](const std::vector<double>& qkv) {
    std::vector<double> o(pr.lay.o_size, 0.0);
    attention_forward<double>(pr.p, qkv.data() + pr.lay.q.offset, qkv.data() + pr.lay.k.offset,
                              qkv.data() + pr.lay.v.offset, o.data(), nullptr);
    double sum = 0;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t i = 0; i < c.Lq; ++i)
          for (int64_t d = 0; d < c.Dv; ++d) {
            const int64_t at = pr.lay.o.index(b, h, i, d);
            sum += pr.dout[at] * o[at];
          }
    return sum;
  };
  constexpr double kStep = 1e-5;
  int64_t checked = 0;
  for (const View* view : {&pr.lay.q, &pr.lay.k, &pr.lay.v}) {
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t l = 0; l < view->L; ++l)
          for (int64_t d = 0; d < view->width; ++d) {
            const int64_t at = view->index(b, h, l, d);
            std::vector<double> plus = pr.qkv, minus = pr.qkv;
            plus[at] += kStep;
            minus[at] -= kStep;
            const double numeric = (loss(plus) - loss(minus)) / (2 * kStep);
            EXPECT_NEAR(run.dqkv[at], numeric, 1e-8) << "element " << at;
            ++checked;
          }
  }
  EXPECT_EQ(checked, c.B * c.H * (c.Lq * c.D + c.Lk * c.D + c.Lk * c.Dv));
}

// ---------------------------------------------------------------------------------------
// Invalid params throw iris::Error naming the op and the shapes.

void expect_forward_throws(const AttentionParams& p, const char* fragment) {
  std::vector<float> buf(1 << 16, 0.0f), o(1 << 16), lse(1 << 12);
  try {
    attention_forward<float>(p, buf.data(), buf.data(), buf.data(), o.data(), lse.data());
    ADD_FAILURE() << "no error for: " << fragment;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("attention_forward"), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
    EXPECT_NE(what.find("Lq="), std::string::npos) << what;
  }
}

TEST(Attention, InvalidParamsThrow) {
  const AttentionParams good = attention_params_bhld(2, 2, 4, 5, 8, 8);
  auto with = [&](auto mutate) {
    AttentionParams p = good;
    mutate(p);
    return p;
  };
  expect_forward_throws(with([](AttentionParams& p) { p.D = 0; }), "D and Dv");
  expect_forward_throws(with([](AttentionParams& p) { p.Dv = -1; }), "D and Dv");
  expect_forward_throws(with([](AttentionParams& p) { p.Lq = 0; }), "Lq and Lk");
  expect_forward_throws(with([](AttentionParams& p) { p.Lk = 0; }), "Lq and Lk");
  expect_forward_throws(with([](AttentionParams& p) { p.B = 0; }), "B and H");
  expect_forward_throws(with([](AttentionParams& p) { p.scale = std::nan(""); }), "scale");
  static const int32_t long_q[2] = {4, 5}, negative_k[2] = {-1, 5};
  expect_forward_throws(with([](AttentionParams& p) { p.q_lens = long_q; }), "q_lens[1]=5");
  expect_forward_throws(with([](AttentionParams& p) { p.k_lens = negative_k; }), "k_lens[0]=-1");
  expect_forward_throws(with([](AttentionParams& p) { p.k_sl = -8; }), "strides of k");
  expect_forward_throws(with([](AttentionParams& p) { p.o_sl = 4; }), "o (written) overlaps");
  expect_forward_throws(with([](AttentionParams& p) { p.o_sh = 0; }), "o (written) overlaps");

  std::vector<float> buf(1024, 0.0f);
  EXPECT_THROW(attention_forward<float>(good, nullptr, buf.data(), buf.data(), buf.data(), nullptr),
               Error);
  // K shared by all heads (stride 0) is fine forward, but dk cannot be written that way.
  AttentionParams shared_k = good;
  shared_k.k_sh = 0;
  std::vector<float> o(1024), lse(64), dq(1024), dk(1024), dv(1024);
  EXPECT_NO_THROW(
      attention_forward<float>(shared_k, buf.data(), buf.data(), buf.data(), o.data(), lse.data()));
  try {
    attention_backward<float>(shared_k, buf.data(), buf.data(), buf.data(), o.data(), buf.data(),
                              lse.data(), dq.data(), dk.data(), dv.data());
    ADD_FAILURE() << "no error for a broadcast dk";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention_backward: k / dk (written) overlaps"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(attention_backward<float>(good, buf.data(), buf.data(), buf.data(), o.data(),
                                         buf.data(), nullptr, dq.data(), dk.data(), dv.data()),
               Error);
}

}  // namespace
}  // namespace iris::cpu
