// Tensor-level GEMM on the CPU: works out transposes and leading dims from the
// strides, so transposed views reach the packed GEMM without a copy.
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"
#include "kernels/linalg.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(batched_gemm)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

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

void batched_gemm_cpu(const Tensor& a, const Tensor& b, const Tensor& out, double alpha,
                      double beta) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  const MatrixLayout la = layout_of(a, "a"), lb = layout_of(b, "b");
  const int64_t sa = a.size(0) == 1 ? 0 : a.stride(0);
  const int64_t sb = b.size(0) == 1 ? 0 : b.stride(0);
  dispatch_float(out.dtype(), "batched_gemm", [&]<class T>() {
    gemm_batched(B, la.trans, lb.trans, M, N, K, static_cast<T>(alpha),
                 static_cast<const T*>(a.raw_data()), std::max<int64_t>(la.ld, 1), sa,
                 static_cast<const T*>(b.raw_data()), std::max<int64_t>(lb.ld, 1), sb,
                 static_cast<T>(beta), out.data<T>(), N, M * N);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(batched_gemm, CPU, batched_gemm_cpu);

}  // namespace iris::cpu
