// cuBLASLt GEMM with bias / GELU epilogues: the CUDA backend's GEMM on a real GPU.
// One handle per device, created on first use and kept for the process (freeing it at exit
// would race the CUDA runtime's own teardown); cuBLASLt handles carry no stream or workspace,
// so threads share it (cuBLAS: thread safe even with one handle). Each call launches on this
// thread's current stream (launch_stream) with a workspace taken from the caching allocator on
// that stream: the allocator hands a freed block only to later work on the same stream, so one
// stream's workspace is never given to another while its GEMM may still run. The heuristic's
// algorithm (and the workspace it needs) is cached per problem: shape, layouts, dtype, epilogue
// and the pointers' alignment (which decides the algorithms cuBLASLt may pick). The row-major
// problem runs as its column-major transpose, D^T [N, M] = op(b) [N, K] @ op(a) [K, M], so the
// bias (one value per column of out) is cuBLASLt's per-row bias of D^T. Under the emulator
// there is no cuBLASLt.
#include "kernels/emu/cuda_compat.h"
// After cuda_compat.h: the header's entry points live in IRIS_KERNEL_NS.
#include "kernels/cuda/gemm_lt.h"

#if !IRIS_EMU
#include <cublasLt.h>

#include <array>
#include <map>
#include <mutex>
#include <optional>

#include "core/tensor.h"
#include "kernels/cuda/launch_stream.h"
#endif

namespace iris::IRIS_KERNEL_NS {

#if IRIS_EMU

bool cublaslt_available(int) { return false; }
bool cublaslt_gemm(const kernels::GemmLtProblem&, const void*, const void*, const void*, void*,
                   int) {
  return false;
}

#else

#define IRIS_CUBLASLT_CHECK(call)                                    \
  do {                                                               \
    const cublasStatus_t iris_lt_status = (call);                    \
    if (iris_lt_status != CUBLAS_STATUS_SUCCESS)                     \
      IRIS_FAIL(#call, " failed at ", __FILE__, ":", __LINE__, ": ", \
                cublasLtGetStatusName(iris_lt_status), " (",         \
                cublasLtGetStatusString(iris_lt_status), ")");       \
  } while (0)

namespace {

// The most workspace an algorithm may ask for: 32 MiB, what NVIDIA recommends for Hopper
// (sm_90); enough for every split-K algorithm. A call takes only what its algorithm needs.
constexpr size_t kMaxWorkspaceBytes = size_t(32) << 20;

// dtype, B, M, N, K, a_trans, b_trans, lda, ldb, a_bs, b_bs, epilogue, beta != 0, and the
// alignments of a, b, out and bias.
using AlgoKey = std::array<int64_t, 17>;
struct LtAlgo {
  cublasLtMatmulAlgo_t algo;
  size_t workspace_bytes;
};
using MaybeAlgo = std::optional<LtAlgo>;  // nullopt: no algorithm supports it

struct LtDevice {
  bool ok = false;
  cublasLtHandle_t handle = nullptr;
  std::map<AlgoKey, MaybeAlgo> algos;
};

std::mutex g_mutex;
// Never destroyed (see above): a leaked map of per-device state.
std::map<int, LtDevice>& devices() {
  static auto* d = new std::map<int, LtDevice>();
  return *d;
}

// Created under g_mutex; a device where the handle cannot be made is remembered as unusable.
LtDevice& device_state(int device) {
  auto [it, fresh] = devices().try_emplace(device);
  LtDevice& d = it->second;
  if (!fresh) return d;
  IRIS_CUDA_CHECK(cudaSetDevice(device));
  if (cublasLtCreate(&d.handle) != CUBLAS_STATUS_SUCCESS) return d;
  d.ok = true;
  return d;
}

cudaDataType_t lt_type(DType dt) {
  switch (dt) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      IRIS_FAIL("cublaslt_gemm: unsupported dtype ", dtype_name(dt));
  }
}

// The largest power of two (at most 256, cuBLASLt's default assumption) dividing the address.
int64_t alignment_of(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  int64_t a = 1;
  while (a < 256 && addr % uintptr_t(2 * a) == 0) a *= 2;
  return a;
}

// Descriptors destroyed on scope exit, whatever throws in between.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  MatmulDesc() {
    IRIS_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  }
  ~MatmulDesc() { (void)cublasLtMatmulDescDestroy(d); }
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;
  template <class V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& v) {
    IRIS_CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
  }
};

struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int32_t batch,
         int64_t batch_stride) {
    IRIS_CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
    IRIS_CUBLASLT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                         &batch, sizeof(batch)));
    IRIS_CUBLASLT_CHECK(cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &batch_stride, sizeof(batch_stride)));
  }
  ~Layout() { (void)cublasLtMatrixLayoutDestroy(l); }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference() { IRIS_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~Preference() { (void)cublasLtMatmulPreferenceDestroy(p); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  template <class V>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const V& v) {
    IRIS_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
  }
};

cublasLtEpilogue_t lt_epilogue(kernels::GemmEpilogue ep) {
  switch (ep) {
    case kernels::GemmEpilogue::none:
      return CUBLASLT_EPILOGUE_DEFAULT;
    case kernels::GemmEpilogue::bias:
      return CUBLASLT_EPILOGUE_BIAS;
    case kernels::GemmEpilogue::bias_gelu_tanh:
      return CUBLASLT_EPILOGUE_GELU_BIAS;
  }
  IRIS_FAIL("cublaslt_gemm: unknown epilogue");
}

}  // namespace

bool cublaslt_available(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return device_state(device).ok;
}

bool cublaslt_gemm(const kernels::GemmLtProblem& p, const void* a, const void* b, const void* bias,
                   void* c, int device) {
  const bool has_bias = p.ep != kernels::GemmEpilogue::none;
  IRIS_CHECK(!has_bias || bias, "cublaslt_gemm: epilogue ", kernels::gemm_epilogue_name(p.ep),
             " needs a bias");
  IRIS_CHECK(p.B >= 1 && p.B <= INT32_MAX, "cublaslt_gemm: batch ", p.B, " out of range");
  const cudaDataType_t type = lt_type(p.dtype);
  const int32_t batch = static_cast<int32_t>(p.B);

  MatmulDesc op;
  const int32_t trans_first = p.b_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t trans_second = p.a_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  op.set(CUBLASLT_MATMUL_DESC_TRANSA, trans_first);
  op.set(CUBLASLT_MATMUL_DESC_TRANSB, trans_second);
  op.set(CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<uint32_t>(lt_epilogue(p.ep)));
  if (has_bias) {
    op.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    op.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(type));
    op.set(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, int64_t(0));  // one bias for every batch
  }
  // Stored (pre-op) shapes in column-major: op(b) is [N, K], op(a) is [K, M], D is [N, M].
  const Layout lb(type, p.b_trans ? p.K : p.N, p.b_trans ? p.N : p.K, p.ldb, batch, p.b_bs);
  const Layout la(type, p.a_trans ? p.M : p.K, p.a_trans ? p.K : p.M, p.lda, batch, p.a_bs);
  const Layout ld(type, p.N, p.M, p.N, batch, p.M * p.N);

  const AlgoKey key{int64_t(p.dtype),
                    p.B,
                    p.M,
                    p.N,
                    p.K,
                    p.a_trans,
                    p.b_trans,
                    p.lda,
                    p.ldb,
                    p.a_bs,
                    p.b_bs,
                    int64_t(p.ep),
                    p.beta != 0,
                    alignment_of(a),
                    alignment_of(b),
                    alignment_of(c),
                    has_bias ? alignment_of(bias) : 0};
  std::unique_lock<std::mutex> lock(g_mutex);
  LtDevice& dev = device_state(device);
  IRIS_CHECK(dev.ok, "cublaslt_gemm: cuBLASLt is not available on cuda:", device);
  auto found = dev.algos.find(key);
  if (found == dev.algos.end()) {
    Preference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kMaxWorkspaceBytes));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(alignment_of(b)));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(alignment_of(a)));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(alignment_of(c)));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(alignment_of(c)));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    IRIS_CUDA_CHECK(cudaSetDevice(device));
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(dev.handle, op.d, lb.l, la.l, ld.l,
                                                            ld.l, pref.p, 1, &result, &returned);
    // NOT_SUPPORTED: no algorithm for this problem, which the hand-written kernels then run.
    if (s != CUBLAS_STATUS_NOT_SUPPORTED) IRIS_CUBLASLT_CHECK(s);
    MaybeAlgo algo;
    if (s == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS)
      algo = LtAlgo{result.algo, result.workspaceSize};
    found = dev.algos.emplace(key, algo).first;
  }
  if (!found->second) return false;
  const LtAlgo chosen = *found->second;
  const cublasLtHandle_t handle = dev.handle;
  lock.unlock();

  IRIS_CUDA_CHECK(cudaSetDevice(device));
  const cudaStream_t stream = ::iris::cuda::launch_stream(nullptr);
  // Allocated on the current stream and freed once the launch is queued: the block returns to
  // that stream's free list, so only work queued after this GEMM on the same stream reuses it.
  const Tensor workspace =
      chosen.workspace_bytes == 0
          ? Tensor()
          : Tensor::empty({int64_t(chosen.workspace_bytes)}, DType::u8, Device::cuda(device));
  void* const workspace_ptr = workspace.defined() ? workspace.raw_data() : nullptr;
  const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
  IRIS_CUBLASLT_CHECK(cublasLtMatmul(handle, op.d, &alpha, b, lb.l, a, la.l, &beta, c, ld.l, c,
                                     ld.l, &chosen.algo, workspace_ptr, chosen.workspace_bytes,
                                     stream));
  return true;
}

#undef IRIS_CUBLASLT_CHECK

#endif

}  // namespace iris::IRIS_KERNEL_NS
