#pragma once
// Host launchers of the emulator's test kernels (tests/emu/kernels/*.cu). The
// same sources compile with nvcc (ctest emu_nvcc_compile_*) and with g++
// against the emulator (linked into the test_emu_* binaries). All pointers are
// device pointers; every launch uses the current stream.
#include <cstdint>

namespace iris::emu_test {

// ---- block_kernels.cu ----
struct BlockTraits {
  static constexpr int kReduceThreads = 256;
  static_assert(kReduceThreads % 32 == 0 && (kReduceThreads & (kReduceThreads - 1)) == 0,
                "the tree reduction halves a power-of-two block");
};
// block_sums[b] = sum of in[i] over the grid-stride indices of block b.
void block_sum(const float* in, int n, float* block_sums, int blocks);
// out[i] = in[block start + (count - 1 - t)] within each block (dynamic shared memory).
void block_reverse(const int* in, int* out, int n, int threads);
// Two carve-outs of one dynamic allocation: out[i] = in_f[i] * 2 + in_i[i] within each block.
void dynamic_carve(const float* in_f, const int* in_i, float* out, int n, int threads);
// out[3 * b + {0,1,2}] = __syncthreads_count(t % 3 == 0), _and(t < blockDim), _or(t == 5).
void barrier_votes(int* out, int blocks, int threads);
// out[global linear thread id] = packed (threadIdx, blockIdx) for a 3D grid of 3D blocks.
void thread_indices(uint32_t* out, int gx, int gy, int gz, int bx, int by, int bz);
// One IRIS_SHARED scalar: thread 0 sets it, every thread reads it back after a barrier.
void shared_scalar(int* out, int threads, int value);
// order[b] = the position at which block b started (a global atomic counter).
void block_order(int* order, int* counter, int blocks);
// arrival[t] = the order in which the threads of one block passed the kernel's first line.
void thread_arrival(int* arrival, int* counter, int threads);

// ---- shared_kernels.cu ----
struct SharedFormsTraits {
  static constexpr int kRows = 8, kCols = 16;
  static constexpr int kThreads = kRows * kCols / 4;  // one float4 per thread
};
// in, out: kRows x kCols floats. Thread t owns the float4 at row r = t / 4, column c:
// out[r][c] = in[r][c] + bf16(in[r + 1][c]), out[r][c + 1] = 2 in[r][c + 1],
// out[r][c + 2] = in[r][c + 2] + 1, out[r][c + 3] = in[r][c + 3] - sum(in[r + 1]) + 4
// (rows wrap; 4 = the threads of a row counted by a shared atomic).
void shared_forms(const float* in, float* out);

// ---- warp_kernels.cu ----
enum class ShuffleMode : int { Idx = 0, Up = 1, Down = 2, Xor = 3 };
// out[t] = shuffle of (t * 10 + 7) with the given mode; the Idx source lane is
// (lane * 7 + arg) so that it exceeds the width for some lanes.
void shuffle_probe(int* out, int threads, ShuffleMode mode, int arg, int width);
// Warp sums by xor butterfly of 64-bit payloads: out_d[w], out_ll[w].
void shuffle_wide(const double* in_d, const long long* in_ll, double* out_d, long long* out_ll,
                  int threads);
struct ShufflePayload {
  float a;
  int b;
  double c;
};
// out[t] = the payload of lane (lane + 5) % 32 of the same warp (a struct shuffle).
void shuffle_struct(const ShufflePayload* in, ShufflePayload* out, int threads);
// Block sum: per-warp xor reduction, partials in shared memory, then a
// reduction inside `if (warp == 0)`; also sum of lanes 0..15 with a 16-lane mask.
void warp_block_sum(const float* in, int n, float* out_total, float* out_half_warp_sums);
// Votes of warp w over the mask m = __activemask() at kernel scope: out[8w + {0..7}] =
// ballot(m, lane % 3 == 0), all(m, t >= 0), any(m, lane == 17), m, __activemask() inside
// `if (lane < 20)`, match_any(m, lane % 4) seen by lane 6, reduce_add(m, lane),
// reduce_max(m, lane * 3 % 7).
void warp_votes(unsigned* out, int threads);
// A warp-synchronous shared-memory reduction ordered by __syncwarp (no race).
void warp_sync_reduce(const int* in, int* out);

// ---- atomic_kernels.cu ----
void histogram(const int* values, int n, unsigned* bins, int nbins, int blocks, int threads);
void histogram_shared(const int* values, int n, unsigned* bins, int blocks, int threads);
struct AtomicResults {
  float fsum;
  double dsum;
  int imax, imin;
  unsigned long long usum;
  float fmax_cas;
  unsigned inc_wrap;
  int exch_token;
};
// Every thread i adds/maxes/mins values[i] into *out; exch_prev[i] = atomicExch(token, i + 1).
void atomic_mix(const float* values, int n, AtomicResults* out, int* exch_prev, int blocks,
                int threads);

// ---- gemm_kernels.cu ----
struct SgemmTraits {
  static constexpr int kTile = 16;
  static_assert(kTile * kTile <= 1024, "one thread per tile element");
};
// C[M,N] = A[M,K] * B[K,N], row-major with leading dimensions.
void sgemm_tiled(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                 int ldc);

// ---- mma_kernels.cu ----
struct MmaTraits {
  static constexpr int kWarpsM = 2, kWarpsN = 2;  // warps per block along M and N
  static constexpr int kBlockM = 16 * kWarpsM, kBlockN = 8 * kWarpsN, kBlockK = 16;
  static constexpr int kPad = 8;  // 16 bytes: keeps every ldmatrix row 16-byte aligned
  static_assert((kBlockK + kPad) * 2 % 16 == 0 && (kBlockN + kPad) * 2 % 16 == 0,
                "ldmatrix rows must stay 16-byte aligned");
};
// One m16n8k16 tile from register fragments built per the PTX table (no ldmatrix):
// A 16x16 and B 16x8 (k x n) as 16-bit bit patterns, row-major; C, D 16x8 f32.
void mma_fragments(const uint16_t* A, const uint16_t* B, const float* C, float* D, bool bf16);
// ldmatrix variants: tile is 32 rows x 8 b16; lane L points at row row_of_lane[L].
// out[L * 4 + i] = register i of lane L (num registers = 1, 2 or 4).
void ldmatrix_probe(const uint16_t* tile, const int* row_of_lane, uint32_t* out, int num,
                    bool trans);
// C[M,N] = A[M,K] * B[K,N] with A, B 16-bit (bf16 or f16 bit patterns), row-major;
// ldmatrix_x4 feeds A, ldmatrix_x2_trans feeds B, mma.sync accumulates in f32.
void mma_gemm(int M, int N, int K, const uint16_t* A, const uint16_t* B, float* C, bool bf16);

// ---- cp_async_kernels.cu ----
struct CopyTraits {
  static constexpr int kThreads = 64;
  static constexpr int kTileFloats = kThreads * 4;  // one 16-byte cp.async per thread
};
// out[i] = 2 * in[i] + 1 through a double-buffered cp.async pipeline (n need not be a
// multiple of anything; the tail is zero-filled).
void pipelined_copy(const float* in, float* out, int n, int blocks);
// The 4- and 8-byte cp.async forms: out[i] = in[i] for n = threads * 3 floats.
void small_async_copy(const float* in, float* out, int threads);

// ---- bug_kernels.cu: planted bugs the emulator must report ----
void bug_early_exit_barrier(int* out);       // threads >= 16 return before __syncthreads
void bug_divergent_barrier_sites(int* out);  // odd and even threads at different barriers
void bug_missing_barrier(const int* in, int* out, int n);  // read a neighbour without a barrier
void bug_write_after_read(int* out, int n);        // reuse a buffer without the trailing barrier
void bug_warp_lockstep(const int* in, int* out);   // warp-synchronous code without __syncwarp
void bug_shared_index_oob(int* out, int threads);  // index 32 of a [32] array
void bug_shared_raw_pointer_oob(int* out, int threads);  // raw pointer writes past the end
void bug_dynamic_oob(int* out, int n);                   // one element past the dynamic allocation
void bug_missing_cp_async_wait(const float* in, float* out);  // commit, no wait, read
void bug_shuffle_exited_lane(int* out);    // lane 5 returns, the rest shuffle with a full mask
void bug_collective_vs_barrier(int* out);  // half a warp at a barrier, half at a shuffle
void bug_shuffle_source_outside_mask(int* out);  // 16-lane mask reading lane + 16: poison
void bug_shuffle_bad_width(int* out);            // width 12
void bug_mask_without_caller(int* out);          // lanes 16..31 pass mask 0xffff
void bug_device_check(int* out, int n);          // IRIS_DEVICE_CHECK fails for one thread
void bug_ldmatrix_misaligned(const uint16_t* tile, uint32_t* out);  // a row 8 bytes off
void bug_misaligned_vector(float* out);   // a float4 store at a 4-byte offset of a shared array
void bug_shared_pointer_oob(float* out);  // a smem_ptr one element past the end

}  // namespace iris::emu_test
