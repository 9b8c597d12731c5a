// Attention entry points: validate params, pick the tile code for this CPU, and spread work
// items over the thread pool, each thread with its own reused workspace. The tiles
// themselves are in attention_tiles.h.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/attention_detail.h"

namespace iris::cpu {
namespace {

using attention_detail::AttentionKernels;
using attention_detail::AttentionTileTraits;
using attention_detail::BackwardArgs;
using attention_detail::ForwardArgs;

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma");
}

const AttentionKernels<float>* avx512_if_supported() {
  static const AttentionKernels<float>* const kernels =
      cpu_has_avx512() ? attention_detail::avx512_attention_kernels() : nullptr;
  return kernels;
}

std::atomic<const AttentionKernels<float>*> g_forced_f32{nullptr};

template <class T>
const AttentionKernels<T>& kernels_for() {
  if constexpr (std::is_same_v<T, float>) {
    if (const AttentionKernels<float>* forced = g_forced_f32.load(std::memory_order_relaxed)) {
      return *forced;
    }
    if (const AttentionKernels<float>* best = avx512_if_supported()) return *best;
  }
  return *attention_detail::generic_attention_kernels<T>();
}

// Grows, never shrinks: steady-state calls allocate nothing.
class ThreadWorkspace {
 public:
  ThreadWorkspace() = default;
  ThreadWorkspace(const ThreadWorkspace&) = delete;
  ThreadWorkspace& operator=(const ThreadWorkspace&) = delete;
  ~ThreadWorkspace() { release(); }

  void* get(size_t bytes) {
    if (bytes > bytes_) {
      release();
      data_ = ::operator new(bytes, kAlignment);
      bytes_ = bytes;
    }
    return data_;
  }

 private:
  static constexpr std::align_val_t kAlignment{AttentionTileTraits<float>::kAlignment};
  void release() {
    if (data_) ::operator delete(data_, kAlignment);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

thread_local ThreadWorkspace t_workspace;

std::string shapes(const AttentionParams& p) {
  return ::iris::detail::cat("(B=", p.B, " H=", p.H, " Lq=", p.Lq, " Lk=", p.Lk, " D=", p.D,
                             " Dv=", p.Dv, ")");
}

// True when distinct (b, h, l, d) indices of a [B, H, L, width] view with these strides
// address distinct elements: sorted by stride, each stride must step over the whole extent
// of the dimensions below it (dimensions of extent 1 do not matter).
bool is_non_overlapping(int64_t B, int64_t sb, int64_t H, int64_t sh, int64_t L, int64_t sl,
                        int64_t width) {
  struct Dim {
    int64_t extent, stride;
  };
  Dim dims[3] = {{B, sb}, {H, sh}, {L, sl}};
  std::sort(std::begin(dims), std::end(dims),
            [](const Dim& x, const Dim& y) { return x.stride < y.stride; });
  int64_t span = width;  // elements covered by the dimensions checked so far
  for (const Dim& dim : dims) {
    if (dim.extent == 1) continue;
    if (dim.stride < span) return false;
    span = dim.stride * (dim.extent - 1) + span;
  }
  return true;
}

void check_layout(const char* op, const AttentionParams& p, const char* name, int64_t L, int64_t sb,
                  int64_t sh, int64_t sl, int64_t width, bool written) {
  IRIS_CHECK(sb >= 0 && sh >= 0 && sl >= 0, op, ": strides of ", name, " must be >= 0, got sb=", sb,
             " sh=", sh, " sl=", sl, " ", shapes(p));
  IRIS_CHECK(!written || is_non_overlapping(p.B, sb, p.H, sh, L, sl, width), op, ": ", name,
             " (written) overlaps itself with strides sb=", sb, " sh=", sh, " sl=", sl,
             " and rows of ", width, " elements ", shapes(p));
}

void check_params(const char* op, const AttentionParams& p, bool backward) {
  IRIS_CHECK(p.B >= 1 && p.H >= 1, op, ": B and H must be >= 1 ", shapes(p));
  IRIS_CHECK(p.Lq >= 1 && p.Lk >= 1, op, ": Lq and Lk must be >= 1 ", shapes(p));
  IRIS_CHECK(p.D >= 1 && p.Dv >= 1, op, ": D and Dv must be >= 1 ", shapes(p));
  IRIS_CHECK(std::isfinite(p.scale), op, ": scale must be finite, got ", p.scale, " ", shapes(p));
  for (int64_t b = 0; b < p.B; ++b) {
    IRIS_CHECK(!p.q_lens || (p.q_lens[b] >= 0 && p.q_lens[b] <= p.Lq), op, ": q_lens[", b,
               "]=", p.q_lens ? p.q_lens[b] : 0, " is outside [0, Lq] ", shapes(p));
    IRIS_CHECK(!p.k_lens || (p.k_lens[b] >= 0 && p.k_lens[b] <= p.Lk), op, ": k_lens[", b,
               "]=", p.k_lens ? p.k_lens[b] : 0, " is outside [0, Lk] ", shapes(p));
  }
  check_layout(op, p, backward ? "q / dq" : "q", p.Lq, p.q_sb, p.q_sh, p.q_sl, p.D, backward);
  check_layout(op, p, backward ? "k / dk" : "k", p.Lk, p.k_sb, p.k_sh, p.k_sl, p.D, backward);
  check_layout(op, p, backward ? "v / dv" : "v", p.Lk, p.v_sb, p.v_sh, p.v_sl, p.Dv, backward);
  check_layout(op, p, backward ? "o / dout" : "o", p.Lq, p.o_sb, p.o_sh, p.o_sl, p.Dv, !backward);
}

// Forward items per (b, h): runs of at most kForwardChunkBlocks query blocks, split further when
// there are fewer heads than threads.
template <class T>
int64_t forward_chunks_per_head(const AttentionParams& p, int threads) {
  using Traits = AttentionTileTraits<T>;
  const int64_t blocks = (p.Lq + Traits::kForwardBlockQ - 1) / Traits::kForwardBlockQ;
  const int64_t for_size = (blocks + Traits::kForwardChunkBlocks - 1) / Traits::kForwardChunkBlocks;
  const int64_t for_threads = (2 * int64_t(threads) + p.B * p.H - 1) / (p.B * p.H);
  return std::min(std::max(for_size, for_threads), blocks);
}

// Runs items [0, count) on the pool, each thread with its workspace.
template <class Args, class Fn>
void run_items(int64_t count, size_t workspace_bytes, const Args& args, Fn* fn) {
  parallel_for(0, count, 1, [&](int64_t first, int64_t last) {
    fn(args, first, last, t_workspace.get(workspace_bytes));
  });
}

}  // namespace

AttentionParams attention_params_bhld(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                                      int64_t Dv) {
  AttentionParams p;
  p.B = B, p.H = H, p.Lq = Lq, p.Lk = Lk, p.D = D, p.Dv = Dv;
  p.scale = D > 0 ? 1.0 / std::sqrt(double(D)) : 0.0;
  p.q_sl = D, p.q_sh = Lq * D, p.q_sb = H * Lq * D;
  p.k_sl = D, p.k_sh = Lk * D, p.k_sb = H * Lk * D;
  p.v_sl = Dv, p.v_sh = Lk * Dv, p.v_sb = H * Lk * Dv;
  p.o_sl = Dv, p.o_sh = Lq * Dv, p.o_sb = H * Lq * Dv;
  return p;
}

template <class T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, T* o, T* lse) {
  constexpr const char* kOp = "attention_forward";
  IRIS_CHECK(q && k && v && o, kOp, ": q, k, v and o must not be null ", shapes(p));
  check_params(kOp, p, false);
  const AttentionKernels<T>& kernels = kernels_for<T>();
  const int64_t chunks = forward_chunks_per_head<T>(p, num_threads());
  run_items(p.B * p.H * chunks, kernels.forward_workspace_bytes(p),
            ForwardArgs<T>{&p, q, k, v, o, lse, chunks}, kernels.forward);
}

template <class T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* o,
                        const T* dout, const T* lse, T* dq, T* dk, T* dv) {
  constexpr const char* kOp = "attention_backward";
  IRIS_CHECK(q && k && v && o && dout && lse && dq && dk && dv, kOp,
             ": q, k, v, o, dout, lse, dq, dk and dv must not be null ", shapes(p));
  check_params(kOp, p, true);
  const AttentionKernels<T>& kernels = kernels_for<T>();
  run_items(p.B * p.H, kernels.backward_workspace_bytes(p),
            BackwardArgs<T>{&p, q, k, v, o, dout, lse, dq, dk, dv}, kernels.backward);
}

template void attention_forward<float>(const AttentionParams&, const float*, const float*,
                                       const float*, float*, float*);
template void attention_forward<double>(const AttentionParams&, const double*, const double*,
                                        const double*, double*, double*);
template void attention_backward<float>(const AttentionParams&, const float*, const float*,
                                        const float*, const float*, const float*, const float*,
                                        float*, float*, float*);
template void attention_backward<double>(const AttentionParams&, const double*, const double*,
                                         const double*, const double*, const double*, const double*,
                                         double*, double*, double*);

const char* attention_isa() { return kernels_for<float>().isa; }

namespace detail {

bool attention_force_isa(const char* isa) {
  if (!isa || !*isa) {
    g_forced_f32.store(nullptr);
    return true;
  }
  const AttentionKernels<float>* kernels = nullptr;
  if (std::strcmp(isa, "avx512") == 0) {
    kernels = avx512_if_supported();
  } else if (std::strcmp(isa, "generic") == 0) {
    kernels = attention_detail::generic_attention_kernels<float>();
  }
  if (!kernels) return false;
  g_forced_f32.store(kernels);
  return true;
}

}  // namespace detail
}  // namespace iris::cpu
