// CPU GEMM driver, after BLIS (Van Zee & van de Geijn): for each NC-wide column block of B
// and KC-deep slice, pack B into NR-column panels; for each MC-tall row block of A, pack
// A into MR-row panels; run the register-tile micro-kernel over the MR x NR grid. Packing
// absorbs transposes, leading dimensions and zero-padded edges, so micro-kernels see one
// layout. Threads split C into a grid of independent sub-problems (no barriers), each with
// its own packed buffers; the grid's shape keeps the duplicated packing smallest.
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/parallel.h"

namespace iris::cpu {
namespace {

template <class T>
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
};

// Portable micro-kernel (fp32 fallback and the fp64 path); the j loop auto-vectorises.
template <class T, int64_t MR, int64_t NR>
void microkernel_generic(int64_t kc, const T* __restrict a, const T* __restrict b, T* c,
                         int64_t ldc, T alpha, T beta, int64_t m, int64_t n) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T& dst = c[i * ldc + j];
      dst = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * dst;
    }
  }
}

// Scalar form of detail::TransposePacker (AVX2, generic and fp64 paths).
template <class T>
void transpose_pack_scalar(const T* src, int64_t lane_stride, int64_t lanes, int64_t kc, int64_t W,
                           T* __restrict dst) {
  for (int64_t l = 0; l < lanes; ++l) {
    const T* run = src + l * lane_stride;
    for (int64_t k = 0; k < kc; ++k) dst[k * W + l] = run[k];
  }
  for (int64_t l = lanes; l < W; ++l) {
    for (int64_t k = 0; k < kc; ++k) dst[k * W + l] = T(0);
  }
}

// Per-core caches of the development Xeon; the blockings below are sized for them (the
// measurements behind the choices are in bench/README.md).
constexpr int64_t kL1DataBytes = 48 * 1024;
constexpr int64_t kL2Bytes = 2048 * 1024;

// The KC x NR panel of B stays in L1 (with room left for the streaming A panel and the C
// tile) while the MR-row panels of the MC x KC block of A stream from L2 (half of it: the
// KC x NC block of B passes through L2 too, from L3).
template <class Traits>
constexpr bool blocking_is_valid() {
  constexpr int64_t bytes = sizeof(typename Traits::Scalar);
  return Traits::kMC % Traits::kMR == 0 && Traits::kNC % Traits::kNR == 0 &&
         Traits::kKC * Traits::kNR * bytes <= kL1DataBytes * 3 / 4 &&
         Traits::kMC * Traits::kKC * bytes <= kL2Bytes / 2;
}

struct Avx512F32Traits {
  using Scalar = float;
  static constexpr int64_t kMR = detail::Avx512F32Tile::kMR;
  static constexpr int64_t kNR = detail::Avx512F32Tile::kNR;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kMC = kMR * 24;
  static constexpr int64_t kNC = kNR * 128;
  static constexpr detail::MicroKernel<float> kKernel = detail::microkernel_avx512_f32;
  static constexpr detail::TransposePacker<float> kTransposePack =
      detail::transpose_pack_avx512_f32;
};
static_assert(blocking_is_valid<Avx512F32Traits>());

struct Avx2F32Traits {
  using Scalar = float;
  static constexpr int64_t kMR = detail::Avx2F32Tile::kMR;
  static constexpr int64_t kNR = detail::Avx2F32Tile::kNR;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kMC = kMR * 48;
  static constexpr int64_t kNC = kNR * 256;
  static constexpr detail::MicroKernel<float> kKernel = detail::microkernel_avx2_f32;
  static constexpr detail::TransposePacker<float> kTransposePack = transpose_pack_scalar<float>;
};
static_assert(blocking_is_valid<Avx2F32Traits>());

// 4 x 8 accumulators: 8 of the 16 SSE registers of baseline x86-64 in fp32, all 16 in fp64
// (whose speed is not a goal: it serves gradient checks).
template <class T>
struct GenericTraits {
  using Scalar = T;
  static constexpr int64_t kMR = 4;
  static constexpr int64_t kNR = 8;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kMC = kMR * 64;
  static constexpr int64_t kNC = kNR * 512;
  static constexpr detail::MicroKernel<T> kKernel = microkernel_generic<T, kMR, kNR>;
  static constexpr detail::TransposePacker<T> kTransposePack = transpose_pack_scalar<T>;
};
static_assert(blocking_is_valid<GenericTraits<float>>());
static_assert(blocking_is_valid<GenericTraits<double>>());

// Below this many flops per thread, waking another thread costs more than it saves: a pool
// dispatch costs ~35 us here, the time of ~6 MFLOP on one core (bench/README.md).
constexpr int64_t kMinFlopsPerThread = int64_t(1) << 23;
constexpr size_t kPackAlignment = 64;

// Grows, never shrinks: one per thread and operand, so packing never allocates in steady
// state.
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { release(); }

  template <class T>
  T* get(int64_t count) {
    const size_t bytes = size_t(count) * sizeof(T);
    if (bytes > bytes_) {
      release();
      data_ = ::operator new (bytes, std::align_val_t{kPackAlignment});
      bytes_ = bytes;
    }
    return static_cast<T*>(data_);
  }

 private:
  void release() {
    if (data_) ::operator delete (data_, std::align_val_t{kPackAlignment});
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

thread_local PackBuffer t_packed_a;
thread_local PackBuffer t_packed_b;

// Packs `extent` lanes by kc into W-lane panels (panel q at dst + q * W * kc, zero-padded):
// dst[k * W + l] = src[l * lane_stride + k * k_stride]. One of the strides is 1 (row-major
// storage); the two cases are the two transposes of either operand.
template <class Traits, int64_t W, class T>
void pack_block(const T* src, int64_t lane_stride, int64_t k_stride, int64_t extent, int64_t kc,
                T* __restrict dst) {
  if (lane_stride != 1) {
    for (int64_t q0 = 0; q0 < extent; q0 += W) {
      Traits::kTransposePack(src + q0 * lane_stride, lane_stride, std::min(W, extent - q0), kc, W,
                             dst + q0 * kc);
    }
    return;
  }
  // Lanes are contiguous: k outermost, so each source row streams once (a panel-major walk
  // would stride by a row per access, a new page each time).
  for (int64_t k = 0; k < kc; ++k) {
    const T* row = src + k * k_stride;
    for (int64_t q0 = 0; q0 < extent; q0 += W) {
      T* out = dst + q0 * kc + k * W;
      const int64_t lanes = std::min(W, extent - q0);
      if (lanes == W) {
        std::memcpy(out, row + q0, W * sizeof(T));
      } else {
        for (int64_t l = 0; l < W; ++l) out[l] = l < lanes ? row[q0 + l] : T(0);
      }
    }
  }
}

// op(A)[i0 : i0+mc, p0 : p0+kc] -> MR-row panels, panel r at dst + r * MR * kc.
template <class Traits, class T>
void pack_a(const Problem<T>& p, int64_t i0, int64_t p0, int64_t mc, int64_t kc, T* dst) {
  const int64_t row_stride = p.trans_a ? 1 : p.lda;
  const int64_t k_stride = p.trans_a ? p.lda : 1;
  pack_block<Traits, Traits::kMR>(p.A + i0 * row_stride + p0 * k_stride, row_stride, k_stride, mc,
                                  kc, dst);
}

// op(B)[p0 : p0+kc, j0 : j0+nc] -> NR-column panels, panel q at dst + q * NR * kc.
template <class Traits, class T>
void pack_b(const Problem<T>& p, int64_t p0, int64_t j0, int64_t kc, int64_t nc, T* dst) {
  const int64_t col_stride = p.trans_b ? p.ldb : 1;
  const int64_t k_stride = p.trans_b ? 1 : p.ldb;
  pack_block<Traits, Traits::kNR>(p.B + p0 * k_stride + j0 * col_stride, col_stride, k_stride, nc,
                                  kc, dst);
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The block size for `extent` split into equal blocks of at most `max_block` (a multiple of
// `unit`): 1024 rows in blocks of <= 336 become 4 x 266, not 3 x 336 + 16, so the last
// block still amortises its packing and the C tile loads.
int64_t even_block(int64_t extent, int64_t max_block, int64_t unit) {
  const int64_t blocks = (extent + max_block - 1) / max_block;
  return std::min(max_block, round_up((extent + blocks - 1) / blocks, unit));
}

// One thread, whole problem (M, N, K >= 1, alpha != 0).
template <class Traits>
void gemm_serial(const Problem<typename Traits::Scalar>& p) {
  using T = typename Traits::Scalar;
  constexpr int64_t MR = Traits::kMR, NR = Traits::kNR;
  const int64_t MC = even_block(p.M, Traits::kMC, MR);
  const int64_t KC = even_block(p.K, Traits::kKC, 1);
  const int64_t NC = even_block(p.N, Traits::kNC, NR);
  T* packed_a = t_packed_a.get<T>(MC * KC);
  T* packed_b = t_packed_b.get<T>(NC * KC);
  for (int64_t jc = 0; jc < p.N; jc += NC) {
    const int64_t nc = std::min(NC, p.N - jc);
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = std::min(KC, p.K - pc);
      // beta applies once, on the first KC slice; later slices accumulate.
      const T beta = pc == 0 ? p.beta : T(1);
      pack_b<Traits>(p, pc, jc, kc, nc, packed_b);
      for (int64_t ic = 0; ic < p.M; ic += MC) {
        const int64_t mc = std::min(MC, p.M - ic);
        pack_a<Traits>(p, ic, pc, mc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            T* c = p.C + (ic + ir) * p.ldc + jc + jr;
            Traits::kKernel(kc, packed_a + ir * kc, packed_b + jr * kc, c, p.ldc, p.alpha, beta,
                            std::min(MR, mc - ir), n);
          }
        }
      }
    }
  }
}

// Rows [m0, m1) x columns [n0, n1) of C as a problem of its own.
template <class T>
Problem<T> sub_problem(const Problem<T>& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  Problem<T> s = p;
  s.M = m1 - m0;
  s.N = n1 - n0;
  s.A = p.A + m0 * (p.trans_a ? 1 : p.lda);
  s.B = p.B + n0 * (p.trans_b ? p.ldb : 1);
  s.C = p.C + m0 * p.ldc + n0;
  return s;
}

// [0, panels) split into `parts` near-equal runs; returns the start of run `part`, in
// elements (whole panels of `width`, clipped to `extent`).
int64_t split_point(int64_t extent, int64_t width, int64_t parts, int64_t part) {
  const int64_t panels = (extent + width - 1) / width;
  return std::min(extent, panels * part / parts * width);
}

template <class Traits>
void gemm_threaded(const Problem<typename Traits::Scalar>& p, int max_threads) {
  constexpr int64_t MR = Traits::kMR, NR = Traits::kNR;
  const int64_t m_panels = (p.M + MR - 1) / MR, n_panels = (p.N + NR - 1) / NR;
  // In double: 2*M*N*K may not fit int64 for extreme shapes.
  const double flops = 2.0 * double(p.M) * double(p.N) * double(p.K);
  int64_t threads = std::max<int64_t>(
      1, int64_t(std::min<double>(max_threads, flops / double(kMinFlopsPerThread))));
  threads = std::min(threads, m_panels * n_panels);
  if (threads <= 1) {
    gemm_serial<Traits>(p);
    return;
  }
  // Each sub-problem packs all of its A rows and B columns: pick the tm x tn grid with the
  // least packing per thread, K * (M/tm + N/tn), among those that have a panel per tile.
  int64_t best_tm = 0, best_cost = 0;
  for (int64_t tm = 1; tm <= threads; ++tm) {
    if (threads % tm != 0) continue;
    const int64_t tn = threads / tm;
    if (tm > m_panels || tn > n_panels) continue;
    const int64_t cost = (m_panels + tm - 1) / tm * MR + (n_panels + tn - 1) / tn * NR;
    if (best_tm == 0 || cost < best_cost) best_tm = tm, best_cost = cost;
  }
  if (best_tm == 0) best_tm = std::min(threads, m_panels);
  const int64_t tm = best_tm, tn = std::max<int64_t>(1, std::min(threads / tm, n_panels));
  iris::parallel_for(0, tm * tn, 1, [&](int64_t begin, int64_t end) {
    // A run of tiles along one row or column of the grid is one rectangle: solve it as one
    // problem (the pool runs the whole range inline when called from inside a task).
    if (tm == 1 || tn == 1) {
      const bool along_m = tn == 1;
      const int64_t m0 = along_m ? split_point(p.M, MR, tm, begin) : 0;
      const int64_t m1 = along_m ? split_point(p.M, MR, tm, end) : p.M;
      const int64_t n0 = along_m ? 0 : split_point(p.N, NR, tn, begin);
      const int64_t n1 = along_m ? p.N : split_point(p.N, NR, tn, end);
      if (m0 < m1 && n0 < n1) gemm_serial<Traits>(sub_problem(p, m0, m1, n0, n1));
      return;
    }
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ti = t / tn, tj = t % tn;
      const int64_t m0 = split_point(p.M, MR, tm, ti), m1 = split_point(p.M, MR, tm, ti + 1);
      const int64_t n0 = split_point(p.N, NR, tn, tj), n1 = split_point(p.N, NR, tn, tj + 1);
      if (m0 < m1 && n0 < n1) gemm_serial<Traits>(sub_problem(p, m0, m1, n0, n1));
    }
  });
}

// C = beta * C: the whole product when K == 0 or alpha == 0 (A and B are not read).
template <class T>
void scale_c(const Problem<T>& p) {
  if (p.beta == T(1)) return;
  for (int64_t i = 0; i < p.M; ++i) {
    T* row = p.C + i * p.ldc;
    if (p.beta == T(0)) {
      std::fill(row, row + p.N, T(0));
    } else {
      for (int64_t j = 0; j < p.N; ++j) row[j] *= p.beta;
    }
  }
}

using F32Runner = void (*)(const Problem<float>&, int);

struct F32Path {
  const char* name;
  F32Runner run;
  bool (*supported)();
};

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma");
}
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool always() { return true; }

// Best first.
constexpr F32Path kF32Paths[] = {
    {"avx512", gemm_threaded<Avx512F32Traits>, cpu_has_avx512},
    {"avx2", gemm_threaded<Avx2F32Traits>, cpu_has_avx2},
    {"generic", gemm_threaded<GenericTraits<float>>, always},
};

const F32Path* best_f32_path() {
  static const F32Path* const best = [] {
    for (const F32Path& path : kF32Paths) {
      if (path.supported()) return &path;
    }
    return &kF32Paths[std::size(kF32Paths) - 1];
  }();
  return best;
}

std::atomic<const F32Path*> g_forced_f32_path{nullptr};

const F32Path& f32_path() {
  const F32Path* forced = g_forced_f32_path.load(std::memory_order_relaxed);
  return forced ? *forced : *best_f32_path();
}

void run_product(const Problem<float>& p, int max_threads) { f32_path().run(p, max_threads); }
void run_product(const Problem<double>& p, int max_threads) {
  gemm_threaded<GenericTraits<double>>(p, max_threads);
}

// `touches_memory` is false for an empty batch: then the pointers are not checked.
template <class T>
void check_problem(const char* op, const Problem<T>& p, bool touches_memory = true) {
  IRIS_CHECK(p.M >= 0 && p.N >= 0 && p.K >= 0, op, ": sizes must be >= 0, got M=", p.M, " N=", p.N,
             " K=", p.K);
  const int64_t a_width = p.trans_a ? p.M : p.K, b_width = p.trans_b ? p.K : p.N;
  IRIS_CHECK(p.lda >= std::max<int64_t>(1, a_width), op, ": lda=", p.lda, " < ", a_width, " for A ",
             p.trans_a ? "(K x M, transposed)" : "(M x K)", ", M=", p.M, " K=", p.K);
  IRIS_CHECK(p.ldb >= std::max<int64_t>(1, b_width), op, ": ldb=", p.ldb, " < ", b_width, " for B ",
             p.trans_b ? "(N x K, transposed)" : "(K x N)", ", K=", p.K, " N=", p.N);
  IRIS_CHECK(p.ldc >= std::max<int64_t>(1, p.N), op, ": ldc=", p.ldc, " < N=", p.N);
  if (!touches_memory) return;
  const bool reads_ab = p.M > 0 && p.N > 0 && p.K > 0 && p.alpha != T(0);
  IRIS_CHECK(!reads_ab || (p.A && p.B), op, ": A or B is null for M=", p.M, " N=", p.N, " K=", p.K);
  IRIS_CHECK(p.M == 0 || p.N == 0 || p.C, op, ": C is null for M=", p.M, " N=", p.N);
}

// A checked problem of any size.
template <class T>
void run_checked(const Problem<T>& p, int max_threads) {
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0 || p.alpha == T(0)) {
    scale_c(p);
    return;
  }
  run_product(p, max_threads);
}

template <class T>
void gemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const Problem<T> p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  check_problem("gemm", p);
  run_checked(p, iris::num_threads());
}

template <class T>
void gemm_batched_impl(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                       int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  const Problem<T> p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  IRIS_CHECK(batch >= 0, "gemm_batched: batch must be >= 0, got ", batch);
  check_problem("gemm_batched", p, batch > 0);
  IRIS_CHECK(stride_a >= 0 && stride_b >= 0 && stride_c >= 0,
             "gemm_batched: strides must be >= 0, got stride_a=", stride_a, " stride_b=", stride_b,
             " stride_c=", stride_c);
  if (batch == 0 || M == 0 || N == 0) return;
  const int64_t c_extent = (M - 1) * ldc + N;
  IRIS_CHECK(batch == 1 || stride_c >= c_extent, "gemm_batched: stride_c=", stride_c,
             " makes the C matrices overlap (each spans ", c_extent, " elements, batch=", batch,
             ")");
  const auto product = [&](int64_t b) {
    Problem<T> pb = p;
    pb.A = A ? A + b * stride_a : A;
    pb.B = B ? B + b * stride_b : B;
    pb.C = C + b * stride_c;
    return pb;
  };
  // Small products or a batch that divides evenly: one thread per run of products, each
  // product single-threaded. Otherwise products in turn, each using every thread.
  const int threads = iris::num_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const bool over_batch = threads > 1 && batch > 1 &&
                          (batch % threads == 0 || batch >= 4 * threads ||
                           flops < double(threads) * 8.0 * double(kMinFlopsPerThread));
  if (!over_batch) {
    for (int64_t b = 0; b < batch; ++b) run_checked(product(b), threads);
    return;
  }
  iris::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) run_checked(product(b), 1);
  });
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc) {
  gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c) {
  gemm_batched_impl(batch, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                    beta, C, ldc, stride_c);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                  int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                  int64_t stride_c) {
  gemm_batched_impl(batch, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                    beta, C, ldc, stride_c);
}

const char* gemm_isa() { return f32_path().name; }

namespace detail {

bool gemm_force_isa(const char* isa) {
  if (isa == nullptr || *isa == '\0') {
    g_forced_f32_path.store(nullptr);
    return true;
  }
  for (const F32Path& path : kF32Paths) {
    if (std::strcmp(path.name, isa) == 0) {
      if (!path.supported()) return false;
      g_forced_f32_path.store(&path);
      return true;
    }
  }
  return false;
}

}  // namespace detail
}  // namespace iris::cpu
