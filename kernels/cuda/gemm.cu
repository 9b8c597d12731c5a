// CUDA batched GEMM (the `batched_gemm` table): a shared-memory tiled SGEMM/DGEMM.
// Each block computes a kBM x kBN tile of one batch's C; each thread a kTM x kTN register
// tile whose rows/cols are strided by the thread grid (conflict-free shared reads, coalesced
// C stores). K advances in kBK slabs through double-buffered shared memory: the next slab is
// prefetched into registers while the current one is multiplied, so there is one barrier per
// slab. Edges are bounds-checked (zero-filled), alpha/beta as in BLAS (beta = 0 never reads
// C), batch stride 0 broadcasts an operand. Accumulation is in T (fp32 for float).
// Transposes and leading dims come from the strides exactly as on the CPU.
// bf16 / fp16 run on tensor cores (mma_tile.cuh): cp.async-staged slabs where rows are
// 16-byte aligned (plain loads otherwise), ldmatrix fragments, mma.sync m16n8k16 with fp32
// accumulation, alpha and beta applied in fp32, C rounded once to the operands' dtype.
// Both kernels apply the gemm_epilogue table's epilogue (bias, GELU) before the store.
// On a real GPU, fp32 / bf16 / fp16 go to cuBLASLt (gemm_lt.cu) unless the caller asks for
// these kernels or cuBLASLt has no algorithm for the problem.
#include <algorithm>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/emu/cuda_compat.h"
// After cuda_compat.h: the header's entry points live in IRIS_KERNEL_NS.
#include "kernels/cuda/gemm_lt.h"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/elementwise_math.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/linalg.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

template <class T>
struct GemmTraits {
  static constexpr int kBM = 64, kBN = 64;  // block tile of C
  static constexpr int kBK = 16;            // K slab per pipeline stage
  static constexpr int kTM = 4, kTN = 4;    // per-thread register tile
  static constexpr int kThreadsM = kBM / kTM, kThreadsN = kBN / kTN;
  static constexpr int kThreads = kThreadsM * kThreadsN;
  static constexpr int kPad = 4;                        // shared row padding (keeps 16-byte rows)
  static constexpr int kALoads = kBM * kBK / kThreads;  // A elements each thread stages
  static constexpr int kBLoads = kBK * kBN / kThreads;
  static_assert(kBM % kTM == 0 && kBN % kTN == 0, "register tile must divide the block tile");
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
  static_assert(kBM * kBK % kThreads == 0 && kBK * kBN % kThreads == 0,
                "every thread stages the same number of elements");
  static_assert(kThreadsN == 16, "a half-warp spans one row of the thread grid");
  static_assert(2 * kBK * (kBM + kBN + 2 * kPad) * sizeof(T) <= 48 * 1024,
                "static shared memory limit");
};

using kernels::GemmEpilogue;

// v + bias[n], then GELU (tanh form, as cuBLASLt's) where asked; v unchanged without a bias.
template <class T>
__device__ __forceinline__ T apply_epilogue(T v, T bias, GemmEpilogue ep) {
  if (ep == GemmEpilogue::none) return v;
  v += bias;
  if (ep == GemmEpilogue::bias_gelu_tanh)
    v = kernels::unary_value(kernels::UnaryOp::gelu_tanh, kernels::UnaryParams{}, v);
  return v;
}

struct GemmArgs {
  int64_t M, N, K;
  int64_t a_rs, a_cs, a_bs;  // A(m, k) = a[b*a_bs + m*a_rs + k*a_cs]
  int64_t b_rs, b_cs, b_bs;  // B(k, n) = b[b*b_bs + k*b_rs + n*b_cs]
  int64_t c_bs, ldc;         // C(m, n) = c[b*c_bs + m*ldc + n]
  bool a_trans, b_trans;     // which index has unit stride: decides the coalesced load order
  GemmEpilogue ep;           // bias [N] (out's dtype) is read only when ep is not none
};

template <class T>
__global__ void __launch_bounds__(GemmTraits<T>::kThreads)
    gemm_kernel(GemmArgs g, T alpha, T beta, const T* __restrict__ a, const T* __restrict__ b,
                const T* __restrict__ bias, T* __restrict__ c) {
  using Tr = GemmTraits<T>;
  IRIS_SHARED(T, As, [2][Tr::kBK][Tr::kBM + Tr::kPad]);  // A slab, k-major
  IRIS_SHARED(T, Bs, [2][Tr::kBK][Tr::kBN + Tr::kPad]);  // B slab, k-major

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % Tr::kThreadsN, ty = tid / Tr::kThreadsN;
  const int64_t batch = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * Tr::kBM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * Tr::kBN;
  a += batch * g.a_bs;
  b += batch * g.b_bs;
  c += batch * g.c_bs;

  // Staging coordinates: consecutive threads walk the operand's unit-stride index.
  auto a_coord = [&](int i, int& mm, int& kk) {
    const int e = tid + i * Tr::kThreads;
    if (g.a_trans)
      mm = e % Tr::kBM, kk = e / Tr::kBM;
    else
      kk = e % Tr::kBK, mm = e / Tr::kBK;
  };
  auto b_coord = [&](int i, int& kk, int& nn) {
    const int e = tid + i * Tr::kThreads;
    if (g.b_trans)
      kk = e % Tr::kBK, nn = e / Tr::kBK;
    else
      nn = e % Tr::kBN, kk = e / Tr::kBN;
  };

  T ra[Tr::kALoads], rb[Tr::kBLoads];
  auto load_global = [&](int64_t k0) {
    for (int i = 0; i < Tr::kALoads; ++i) {
      int mm, kk;
      a_coord(i, mm, kk);
      const int64_t m = m0 + mm, k = k0 + kk;
      ra[i] = (m < g.M && k < g.K) ? a[m * g.a_rs + k * g.a_cs] : T(0);
    }
    for (int i = 0; i < Tr::kBLoads; ++i) {
      int kk, nn;
      b_coord(i, kk, nn);
      const int64_t k = k0 + kk, n = n0 + nn;
      rb[i] = (k < g.K && n < g.N) ? b[k * g.b_rs + n * g.b_cs] : T(0);
    }
  };
  auto store_shared = [&](int buf) {
    for (int i = 0; i < Tr::kALoads; ++i) {
      int mm, kk;
      a_coord(i, mm, kk);
      As[buf][kk][mm] = ra[i];
    }
    for (int i = 0; i < Tr::kBLoads; ++i) {
      int kk, nn;
      b_coord(i, kk, nn);
      Bs[buf][kk][nn] = rb[i];
    }
  };

  T acc[Tr::kTM][Tr::kTN];
  for (int i = 0; i < Tr::kTM; ++i)
    for (int j = 0; j < Tr::kTN; ++j) acc[i][j] = T(0);

  const int64_t slabs = (g.K + Tr::kBK - 1) / Tr::kBK;
  if (slabs > 0) {
    load_global(0);
    store_shared(0);
  }
  __syncthreads();
  for (int64_t s = 0; s < slabs; ++s) {
    const int cur = static_cast<int>(s & 1);
    const bool more = s + 1 < slabs;
    if (more) load_global((s + 1) * Tr::kBK);  // in flight while this slab is multiplied
    for (int kk = 0; kk < Tr::kBK; ++kk) {
      T av[Tr::kTM], bv[Tr::kTN];
      for (int i = 0; i < Tr::kTM; ++i) av[i] = As[cur][kk][ty + i * Tr::kThreadsM];
      for (int j = 0; j < Tr::kTN; ++j) bv[j] = Bs[cur][kk][tx + j * Tr::kThreadsN];
      for (int i = 0; i < Tr::kTM; ++i)
        for (int j = 0; j < Tr::kTN; ++j) acc[i][j] += av[i] * bv[j];
    }
    // The other buffer was last read before the previous barrier: safe to overwrite.
    if (more) store_shared(cur ^ 1);
    __syncthreads();
  }

  for (int i = 0; i < Tr::kTM; ++i) {
    const int64_t m = m0 + ty + i * Tr::kThreadsM;
    if (m >= g.M) continue;
    for (int j = 0; j < Tr::kTN; ++j) {
      const int64_t n = n0 + tx + j * Tr::kThreadsN;
      if (n >= g.N) continue;
      T* dst = c + m * g.ldc + n;
      const T v = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *dst;
      *dst = apply_epilogue(v, g.ep == GemmEpilogue::none ? T(0) : bias[n], g.ep);
    }
  }
}

// What the tensor-core kernel needs beyond GemmArgs: per operand, whether its slabs are
// stored k-inner and whether cp.async may stage them.
struct MmaArgs {
  GemmArgs g;
  int64_t lda, ldb;
  bool a_async, b_async;
};

template <mma::Half H>
__global__ void __launch_bounds__(mma::TileTraits::kThreads)
    gemm_mma_kernel(MmaArgs p, float alpha, float beta, const uint16_t* __restrict__ a,
                    const uint16_t* __restrict__ b, const uint16_t* __restrict__ bias,
                    uint16_t* __restrict__ c) {
  using Tr = mma::TileTraits;
  IRIS_SHARED(uint16_t, As, [2][Tr::kSlabElems]);
  IRIS_SHARED(uint16_t, Bs, [2][Tr::kSlabElems]);
  const GemmArgs& g = p.g;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int warp_m0 = (warp / Tr::kWarpsN) * Tr::kWarpM;
  const int warp_n0 = (warp % Tr::kWarpsN) * Tr::kWarpN;
  const int64_t batch = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * Tr::kBM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * Tr::kBN;
  a += batch * g.a_bs;
  b += batch * g.b_bs;
  c += batch * g.c_bs;
  // A row-major is stored [m][k] (k inner); transposed, [k][m]. B row-major is [k][n];
  // transposed, [n][k] (k inner).
  const mma::SlabLayout al{!g.a_trans, g.a_trans ? Tr::kBM + Tr::kPad : Tr::kBK + Tr::kPad};
  const mma::SlabLayout bl{g.b_trans, g.b_trans ? Tr::kBK + Tr::kPad : Tr::kBN + Tr::kPad};
  auto stage = [&](int buf, int64_t k0) {
    if (al.k_inner)
      mma::stage_slab(As[buf], al.pitch, Tr::kBM, Tr::kBK, a, p.lda, m0, g.M, k0, g.K, p.a_async,
                      tid);
    else
      mma::stage_slab(As[buf], al.pitch, Tr::kBK, Tr::kBM, a, p.lda, k0, g.K, m0, g.M, p.a_async,
                      tid);
    if (bl.k_inner)
      mma::stage_slab(Bs[buf], bl.pitch, Tr::kBN, Tr::kBK, b, p.ldb, n0, g.N, k0, g.K, p.b_async,
                      tid);
    else
      mma::stage_slab(Bs[buf], bl.pitch, Tr::kBK, Tr::kBN, b, p.ldb, k0, g.K, n0, g.N, p.b_async,
                      tid);
  };

  mma::Accumulators<Tr> acc;
  acc.zero();
  const int64_t slabs = (g.K + Tr::kBK - 1) / Tr::kBK;
  if (slabs > 0) stage(0, 0);
  iris::ptx::cp_async_commit();
  for (int64_t s = 0; s < slabs; ++s) {
    const int cur = static_cast<int>(s & 1);
    if (s + 1 < slabs) stage(cur ^ 1, (s + 1) * Tr::kBK);  // lands while this slab computes
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait<1>();  // every group but the newest: slab s is in
    __syncthreads();
    mma::warp_mma_slab<H, Tr>(acc, As[cur], al, Bs[cur], bl, warp_m0, warp_n0, lane);
    __syncthreads();  // slab s's buffer is restaged next iteration
  }
  iris::ptx::cp_async_wait_all();

  IRIS_MMA_UNROLL
  for (int i = 0; i < Tr::kFragsM; ++i) {
    IRIS_MMA_UNROLL
    for (int j = 0; j < Tr::kFragsN; ++j) {
      IRIS_MMA_UNROLL
      for (int r = 0; r < 4; ++r) {
        const int64_t m = m0 + mma::Accumulators<Tr>::row(warp_m0, i, r, lane);
        const int64_t n = n0 + mma::Accumulators<Tr>::col(warp_n0, j, r, lane);
        if (m >= g.M || n >= g.N) continue;
        uint16_t* dst = c + m * g.ldc + n;
        float v = alpha * acc.c[i][j][r];
        if (beta != 0.0f) v += beta * mma::half_to_float<H>(*dst);
        const float bn = g.ep == GemmEpilogue::none ? 0.0f : mma::half_to_float<H>(bias[n]);
        *dst = mma::float_to_half<H>(apply_epilogue(v, bn, g.ep));
      }
    }
  }
}

template <class Fn>
void dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32:
      return fn.template operator()<float>();
    case DType::f64:
      return fn.template operator()<double>();
    default:
      IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda (float32/float64)");
  }
}

struct MatrixLayout {
  bool trans;
  int64_t ld;
};

// rows x cols matrix with strides (sr, sc): row-major needs sc == 1, transposed sr == 1.
MatrixLayout layout_of(const Tensor& t, const char* which) {
  const int64_t rows = t.size(1), cols = t.size(2), sr = t.stride(1), sc = t.stride(2);
  if (sc == 1 || cols == 1) return {false, rows == 1 ? std::max<int64_t>(cols, 1) : sr};
  if (sr == 1 || rows == 1) return {true, cols == 1 ? std::max<int64_t>(rows, 1) : sc};
  IRIS_FAIL("batched_gemm: operand ", which, " ", t.desc(), " with strides ",
            shape_str(t.strides()), " has no unit stride in its last two dims");
}

// cp.async moves 16-byte chunks: the operand's rows must start 16-byte aligned.
bool rows_aligned(const Tensor& t, int64_t ld, int64_t batch_stride) {
  const auto addr = reinterpret_cast<uintptr_t>(t.raw_data());
  return addr % 16 == 0 && ld % mma::TileTraits::kChunk == 0 &&
         batch_stride % mma::TileTraits::kChunk == 0;
}

void launch_mma_gemm(const Tensor& a, const Tensor& b, const Tensor& out, const void* bias,
                     const GemmArgs& g, int64_t lda, int64_t ldb, int64_t B, double alpha,
                     double beta) {
  using Tr = mma::TileTraits;
  MmaArgs p{g, lda, ldb, rows_aligned(a, lda, g.a_bs), rows_aligned(b, ldb, g.b_bs)};
  constexpr int64_t kMaxGridYZ = 65535;
  const int64_t gx = (g.M + Tr::kBM - 1) / Tr::kBM, gy = (g.N + Tr::kBN - 1) / Tr::kBN;
  IRIS_CHECK(gy <= kMaxGridYZ, "batched_gemm: ", g.N, " columns exceed the grid limit on cuda");
  const auto* ap = static_cast<const uint16_t*>(a.raw_data());
  const auto* bp = static_cast<const uint16_t*>(b.raw_data());
  const auto* biasp = static_cast<const uint16_t*>(bias);
  auto* cp = static_cast<uint16_t*>(out.raw_data());
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridYZ) {
    const int64_t nb = std::min(B - b0, kMaxGridYZ);
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                    static_cast<unsigned>(nb));
    if (out.dtype() == DType::bf16)
      IRIS_LAUNCH(gemm_mma_kernel<mma::Half::kBf16>, grid, dim3(Tr::kThreads), 0, nullptr, p,
                  static_cast<float>(alpha), static_cast<float>(beta), ap + b0 * g.a_bs,
                  bp + b0 * g.b_bs, biasp, cp + b0 * g.c_bs);
    else
      IRIS_LAUNCH(gemm_mma_kernel<mma::Half::kF16>, grid, dim3(Tr::kThreads), 0, nullptr, p,
                  static_cast<float>(alpha), static_cast<float>(beta), ap + b0 * g.a_bs,
                  bp + b0 * g.b_bs, biasp, cp + b0 * g.c_bs);
  }
}

void launch_simt_gemm(const Tensor& a, const Tensor& b, const Tensor& out, const void* bias,
                      const GemmArgs& g, int64_t B, double alpha, double beta) {
  dispatch_float(out.dtype(), "batched_gemm", [&]<class T>() {
    using Tr = GemmTraits<T>;
    // M tiles on grid.x (2^31 - 1), N tiles on grid.y, batches on grid.z in chunks.
    constexpr int64_t kMaxGridYZ = 65535;
    const int64_t gx = (g.M + Tr::kBM - 1) / Tr::kBM, gy = (g.N + Tr::kBN - 1) / Tr::kBN;
    IRIS_CHECK(gy <= kMaxGridYZ, "batched_gemm: ", g.N, " columns exceed the grid limit on cuda");
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    const T* biasp = static_cast<const T*>(bias);
    T* cp = static_cast<T*>(out.raw_data());
    for (int64_t b0 = 0; b0 < B; b0 += kMaxGridYZ) {
      const int64_t nb = std::min(B - b0, kMaxGridYZ);
      IRIS_LAUNCH(
          gemm_kernel<T>,
          dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(nb)),
          dim3(Tr::kThreads), 0, nullptr, g, static_cast<T>(alpha), static_cast<T>(beta),
          ap + b0 * g.a_bs, bp + b0 * g.b_bs, biasp, cp + b0 * g.c_bs);
    }
  });
}

// out = epilogue(alpha * a @ b + beta * out) on validated operands: cuBLASLt where
// gemm_prefers_cublaslt says so and it has an algorithm, else the hand-written kernels.
void run_gemm(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
              const Tensor& bias, GemmEpilogue ep, kernels::GemmImpl impl) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (B == 0 || M == 0 || N == 0) return;
  const MatrixLayout la = layout_of(a, "a"), lb = layout_of(b, "b");
  GemmArgs g{};
  g.M = M, g.N = N, g.K = K;
  const int64_t lda = std::max<int64_t>(la.ld, 1), ldb = std::max<int64_t>(lb.ld, 1);
  g.a_trans = la.trans, g.b_trans = lb.trans;
  g.a_rs = la.trans ? 1 : lda, g.a_cs = la.trans ? lda : 1;
  g.b_rs = lb.trans ? 1 : ldb, g.b_cs = lb.trans ? ldb : 1;
  g.a_bs = a.size(0) == 1 ? 0 : a.stride(0);
  g.b_bs = b.size(0) == 1 ? 0 : b.stride(0);
  g.ldc = N, g.c_bs = M * N;  // out is dense [B, M, N]
  g.ep = ep;
  const void* biasp = ep == GemmEpilogue::none ? nullptr : bias.raw_data();

  kernels::GemmLtProblem lt;
  lt.dtype = out.dtype();
  lt.B = B, lt.M = M, lt.N = N, lt.K = K;
  lt.a_trans = la.trans, lt.b_trans = lb.trans;
  lt.lda = lda, lt.ldb = ldb, lt.a_bs = g.a_bs, lt.b_bs = g.b_bs;
  lt.alpha = alpha, lt.beta = beta, lt.ep = ep;
  const int device = out.device().index;
  if (kernels::gemm_prefers_cublaslt(lt, cublaslt_available(device), impl) &&
      cublaslt_gemm(lt, a.raw_data(), b.raw_data(), biasp, out.raw_data(), device))
    return;
  if (out.dtype() == DType::bf16 || out.dtype() == DType::f16)
    launch_mma_gemm(a, b, out, biasp, g, lda, ldb, B, alpha, beta);
  else
    launch_simt_gemm(a, b, out, biasp, g, B, alpha, beta);
}

void batched_gemm_cuda(const Tensor& a, const Tensor& b, const Tensor& out, double alpha,
                       double beta) {
  IRIS_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3,
             "batched_gemm: expected 3-d operands, got ", a.desc(), ", ", b.desc(), ", ",
             out.desc());
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  IRIS_CHECK(a.size(1) == M && b.size(1) == K && b.size(2) == N &&
                 (a.size(0) == B || a.size(0) == 1) && (b.size(0) == B || b.size(0) == 1),
             "batched_gemm: shapes do not agree: ", a.desc(), " @ ", b.desc(), " -> ", out.desc());
  IRIS_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(),
             "batched_gemm: dtype mismatch: ", a.desc(), ", ", b.desc(), ", ", out.desc());
  run_gemm(a, b, out, alpha, beta, Tensor(), GemmEpilogue::none, kernels::GemmImpl::automatic);
}

void gemm_epilogue_cuda(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out,
                        GemmEpilogue ep, kernels::GemmImpl impl) {
  kernels::check_gemm_epilogue_args(a, b, bias, out, ep);
  run_gemm(a, b, out, 1.0, 0.0, bias, ep, impl);
}

}  // namespace

IRIS_REGISTER_KERNEL(batched_gemm, CUDA, batched_gemm_cuda);
IRIS_REGISTER_KERNEL(gemm_epilogue, CUDA, gemm_epilogue_cuda);

}  // namespace iris::IRIS_KERNEL_NS
