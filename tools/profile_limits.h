#pragma once
// This machine's own limits, measured: the fp32 FMA peak (independent FMA chains on the
// widest registers the GEMM path uses, one loop per pool thread) and the memory bandwidth
// (a multi-threaded read + write stream far larger than the caches). Header-only so that
// bench/bench_gemm (libiris only) and `iris profile` measure the peak the same way.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/gemm.h"

namespace iris::tools::limits {

// Independent accumulators per thread: FMA latency (4 cycles) x 2 FMA ports, with slack.
constexpr int kPeakChains = 12;
constexpr int64_t kPeakIterations = int64_t(1) << 24;

__attribute__((target("avx512f,fma"))) inline float fma_chains_avx512(int64_t iterations) {
  __m512 acc[kPeakChains];
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
  for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  // A store, not _mm512_reduce_add_ps: g++ 12 warns (-Wuninitialized) inside the latter.
  alignas(64) float lanes[16];
  for (int i = 1; i < kPeakChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  _mm512_store_ps(lanes, acc[0]);
  return lanes[0] + lanes[15];
}

__attribute__((target("avx2,fma"))) inline float fma_chains_avx2(int64_t iterations) {
  __m256 acc[kPeakChains];
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
  for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  alignas(32) float lanes[8];
  for (int i = 1; i < kPeakChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  _mm256_store_ps(lanes, acc[0]);
  return lanes[0] + lanes[7];
}

// Baseline SSE: 4-wide multiply + add (no FMA), counted as 2 flops per lane.
inline float mul_add_chains_sse(int64_t iterations) {
  __m128 acc[kPeakChains];
  const __m128 x = _mm_set1_ps(0.999f), y = _mm_set1_ps(1e-3f);
  for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm_set1_ps(float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], x), y);
  }
  for (int i = 1; i < kPeakChains; ++i) acc[0] = _mm_add_ps(acc[0], acc[i]);
  return _mm_cvtss_f32(acc[0]);
}

// One chain loop on every pool thread; returns the flops performed.
inline int64_t run_peak_loop(int64_t iterations) {
  const std::string isa = cpu::gemm_isa();
  const int threads = num_threads();
  const int lanes = isa == "avx512" ? 16 : isa == "avx2" ? 8 : 4;
  std::vector<float> sink(size_t(threads), 0.0f);
  parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      sink[size_t(t)] = isa == "avx512" ? fma_chains_avx512(iterations)
                        : isa == "avx2" ? fma_chains_avx2(iterations)
                                        : mul_add_chains_sse(iterations);
    }
  });
  // Publish the results so the loops are not optimised away.
  volatile float keep = 0;
  for (float s : sink) keep = keep + s;
  return int64_t(threads) * iterations * kPeakChains * lanes * 2;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The best of `reps` runs of the FMA loop, in GFLOP/s, on num_threads() threads.
inline double measure_fma_peak_gflops(int reps = 5, int64_t iterations = kPeakIterations) {
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t flops = run_peak_loop(iterations);
    best = std::max(best, double(flops) / seconds_since(start) * 1e-9);
  }
  return best;
}

// The best of `reps` passes of dst[i] = a * src[i] over `bytes` per buffer, split over the
// pool's threads, in GB/s counting the bytes read and written (a STREAM "scale").
inline double measure_memory_bandwidth_gbs(int64_t bytes = int64_t(256) << 20, int reps = 5) {
  const int64_t n = std::max<int64_t>(bytes / int64_t(sizeof(float)), 1024);
  std::vector<float> src(static_cast<size_t>(n)), dst(static_cast<size_t>(n));
  const int64_t grain = 1 << 16;
  // First touch from the pool, so pages land where the threads that stream them run.
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) src[size_t(i)] = float(i & 1023), dst[size_t(i)] = 0.0f;
  });
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const float a = 1.0f + float(rep) * 1e-3f;
    const auto start = std::chrono::steady_clock::now();
    parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
      const float* s = src.data();
      float* d = dst.data();
      for (int64_t i = b; i < e; ++i) d[i] = a * s[i];
    });
    best = std::max(best, 2.0 * double(n) * sizeof(float) / seconds_since(start) * 1e-9);
  }
  volatile float keep = dst[size_t(n / 2)];
  (void)keep;
  return best;
}

}  // namespace iris::tools::limits
