#pragma once
// The only inline PTX iris kernels may use, each with an emulated twin:
// tensor-core mma.sync m16n8k16 (bf16/f16 in, f32 accumulate), ldmatrix
// x1/x2/x4 (.trans) and cp.async with its commit/wait. With nvcc these are
// asm; under emulation mma and ldmatrix are warp collectives that implement
// the PTX ISA fragment layouts, and cp.async data lands only at the wait.
//
// Fragments (g = lane >> 2, t = lane % 4; two 16-bit values per register, low half first):
//   A 16x16 row-major: a[0] = (g, 2t..2t+1)  a[1] = (g+8, 2t..)  a[2] = (g, 2t+8..)  a[3] = (g+8,
//   2t+8..) B 16x8 (k x n):    b[0] = (k 2t..2t+1, n g)  b[1] = (k 2t+8.., n g) C/D 16x8 f32:
//   c[0..1] = (g, 2t..2t+1)  c[2..3] = (g+8, 2t..2t+1)
// ldmatrix: lanes 8i..8i+7 give the row addresses of matrix i (16 bytes each);
// register i of lane L holds matrix i, row L>>2, columns 2(L&3), 2(L&3)+1
// (with .trans: column L>>2, rows 2(L&3), 2(L&3)+1).
#include <cstdint>

#if defined(__CUDACC__)

namespace iris::ptx {

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4],
                                                  const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4],
                                                 const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}

#define IRIS_PTX_LDMATRIX(name, n, trans, regs, outs)                                         \
  __device__ __forceinline__ void name(uint32_t(&r)[n], const void* smem_row) {               \
    asm volatile("ldmatrix.sync.aligned.m8n8.x" #n trans ".shared.b16 " regs ", [%" #n "];\n" \
                 : outs                                                                       \
                 : "r"(smem_address(smem_row))                                                \
                 : "memory");                                                                 \
  }
#define IRIS_PTX_OUT1 "=r"(r[0])
#define IRIS_PTX_OUT2 "=r"(r[0]), "=r"(r[1])
#define IRIS_PTX_OUT4 "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
IRIS_PTX_LDMATRIX(ldmatrix_x1, 1, "", "{%0}", IRIS_PTX_OUT1)
IRIS_PTX_LDMATRIX(ldmatrix_x2, 2, "", "{%0,%1}", IRIS_PTX_OUT2)
IRIS_PTX_LDMATRIX(ldmatrix_x4, 4, "", "{%0,%1,%2,%3}", IRIS_PTX_OUT4)
IRIS_PTX_LDMATRIX(ldmatrix_x1_trans, 1, ".trans", "{%0}", IRIS_PTX_OUT1)
IRIS_PTX_LDMATRIX(ldmatrix_x2_trans, 2, ".trans", "{%0,%1}", IRIS_PTX_OUT2)
IRIS_PTX_LDMATRIX(ldmatrix_x4_trans, 4, ".trans", "{%0,%1,%2,%3}", IRIS_PTX_OUT4)
#undef IRIS_PTX_LDMATRIX
#undef IRIS_PTX_OUT1
#undef IRIS_PTX_OUT2
#undef IRIS_PTX_OUT4

__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_address(smem_dst)),
               "l"(gmem_src)
               : "memory");
}
// Copies src_bytes (0..16) and zero-fills the rest of the 16 (tile edges).
__device__ __forceinline__ void cp_async_16_zfill(void* smem_dst, const void* gmem_src,
                                                  int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem_dst)),
               "l"(gmem_src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_8(void* smem_dst, const void* gmem_src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_address(smem_dst)),
               "l"(gmem_src)
               : "memory");
}
__device__ __forceinline__ void cp_async_4(void* smem_dst, const void* gmem_src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_address(smem_dst)),
               "l"(gmem_src)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of the committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

}  // namespace iris::ptx

#else  // the emulator

#include <source_location>

namespace iris::ptx {

using Loc = std::source_location;

void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const float (&c)[4], Loc loc = Loc::current());
void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                      const float (&c)[4], Loc loc = Loc::current());

void ldmatrix_x1(uint32_t (&r)[1], const void* smem_row, Loc loc = Loc::current());
void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row, Loc loc = Loc::current());
void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row, Loc loc = Loc::current());
void ldmatrix_x1_trans(uint32_t (&r)[1], const void* smem_row, Loc loc = Loc::current());
void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row, Loc loc = Loc::current());
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row, Loc loc = Loc::current());

void cp_async_16(void* smem_dst, const void* gmem_src, Loc loc = Loc::current());
void cp_async_16_zfill(void* smem_dst, const void* gmem_src, int src_bytes,
                       Loc loc = Loc::current());
void cp_async_8(void* smem_dst, const void* gmem_src, Loc loc = Loc::current());
void cp_async_4(void* smem_dst, const void* gmem_src, Loc loc = Loc::current());
void cp_async_commit(Loc loc = Loc::current());
void cp_async_wait_groups(int n, Loc loc);
template <int N>
void cp_async_wait(Loc loc = Loc::current()) {
  static_assert(N >= 0 && N <= 7, "cp.async.wait_group takes 0..7");
  cp_async_wait_groups(N, loc);
}
void cp_async_wait_all(Loc loc = Loc::current());

}  // namespace iris::ptx

#endif
