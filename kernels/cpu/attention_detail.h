#pragma once
// Internals shared by attention.cpp (validation, threading, workspaces) and the tile code
// (attention_tiles.h), which is compiled once per instruction set: attention_generic.cpp
// and attention_avx512.cpp. Only plain data lives here, so the two builds share no code.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/attention.h"

namespace iris::cpu::attention_detail {

// Tiles of Br query rows x Bc keys. The forward runs up to kForwardChunkBlocks query blocks
// against each packed key tile; per thread it keeps a D x Bc key tile, a Br x Bc score tile
// and a (chunk rows) x Dv accumulator, whatever Lq and Lk are. The backward keeps K^T and
// V^T tiles, two Br x Bc tiles (P, dS) and Di for the Lq rows of one head. Sizes picked by
// measurement (bench_attention): the forward's wider key tiles halve the online-softmax
// rescaling passes; the backward, with five products per tile, prefers square 64 x 64.
template <class T>
struct AttentionTileTraits {
  static constexpr int64_t kForwardBlockQ = 64;
  static constexpr int64_t kForwardBlockK = 128;
  static constexpr int64_t kForwardChunkBlocks = 4;
  static constexpr int64_t kBackwardBlockQ = 64;
  static constexpr int64_t kBackwardBlockK = 64;
  // Lane count of the split reductions (row max, row sum, dot): one 512-bit vector.
  static constexpr int64_t kLanes = 64 / int64_t(sizeof(T));
  static constexpr size_t kAlignment = 64;
  static_assert(kForwardBlockQ >= 1 && kForwardChunkBlocks >= 1 && kBackwardBlockQ >= 1);
  static_assert(kForwardBlockK % kLanes == 0 && kBackwardBlockK % kLanes == 0,
                "score rows are whole vectors");
  static_assert((kForwardBlockK * sizeof(T)) % kAlignment == 0 &&
                    (kBackwardBlockK * sizeof(T)) % kAlignment == 0,
                "score rows stay vector-aligned");
};

template <class T>
struct ForwardArgs {
  const AttentionParams* p;
  const T* q;
  const T* k;
  const T* v;
  T* o;
  T* lse;                   // may be nullptr
  int64_t chunks_per_head;  // forward work items per (b, h), each a run of query blocks
};

template <class T>
struct BackwardArgs {
  const AttentionParams* p;
  const T* q;
  const T* k;
  const T* v;
  const T* o;
  const T* dout;
  const T* lse;
  T* dq;
  T* dk;
  T* dv;
};

// C[m x n] = alpha * A[m x k] B[k x n] (+ C when accumulate), where A(i, l) =
// a[i * a_rs + l * a_ks] (so A may be a transposed tile) and rows of B and C are contiguous.
template <class T>
struct GemmArgs {
  int64_t m, n, k;
  T alpha;
  const T* a;
  int64_t a_rs, a_ks;
  const T* b;
  int64_t ldb;
  T* c;
  int64_t ldc;
  bool accumulate;
};

// One instruction set's tile code. Work items: (b, h, chunk of query blocks) in the forward,
// (b, h) in the backward; each call runs items [first, last) with a workspace of the reported size
// (aligned to kAlignment, owned by the calling thread).
template <class T>
struct AttentionKernels {
  const char* isa;
  size_t (*forward_workspace_bytes)(const AttentionParams& p);
  void (*forward)(const ForwardArgs<T>& args, int64_t first, int64_t last, void* workspace);
  size_t (*backward_workspace_bytes)(const AttentionParams& p);
  void (*backward)(const BackwardArgs<T>& args, int64_t first, int64_t last, void* workspace);
};

// Defined in attention_generic.cpp (float, double) and attention_avx512.cpp (float; nullptr
// when that file was built without AVX-512). Call the AVX-512 table only when cpuid has it.
template <class T>
const AttentionKernels<T>* generic_attention_kernels();
const AttentionKernels<float>* avx512_attention_kernels();

}  // namespace iris::cpu::attention_detail
