// fp32 GEMM throughput against this machine's own FMA peak. The peak is measured first (a
// loop of independent FMAs on the widest registers the GEMM path uses, one per thread),
// then each shape reports GFLOP/s and pct_peak. Threads: IRIS_NUM_THREADS, default 2;
// IRIS_GEMM_ISA forces the fp32 path.
//   bench_gemm [--benchmark_filter=...]         (see bench/README.md, section GEMM)
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/gemm.h"

namespace {

// Independent accumulators per thread: FMA latency (4 cycles) x 2 FMA ports, with slack.
constexpr int kPeakChains = 12;
constexpr int64_t kPeakIterations = int64_t(1) << 24;

__attribute__((target("avx512f,fma"))) float fma_chains_avx512(int64_t iterations) {
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

__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t iterations) {
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
float mul_add_chains_sse(int64_t iterations) {
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

// One chain step on every thread; returns flops performed.
int64_t run_peak_loop(int64_t iterations) {
  const std::string isa = iris::cpu::gemm_isa();
  const int threads = iris::num_threads();
  const int lanes = isa == "avx512" ? 16 : isa == "avx2" ? 8 : 4;
  std::vector<float> sink(size_t(threads), 0.0f);
  iris::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      sink[size_t(t)] = isa == "avx512" ? fma_chains_avx512(iterations)
                        : isa == "avx2" ? fma_chains_avx2(iterations)
                                        : mul_add_chains_sse(iterations);
    }
  });
  benchmark::DoNotOptimize(sink.data());
  return int64_t(threads) * iterations * kPeakChains * lanes * 2;
}

double measure_peak_gflops() {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t flops = run_peak_loop(kPeakIterations);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(flops) / seconds * 1e-9);
  }
  return best;
}

double g_peak_gflops = 0;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Plain counters from our own wall clock over the timed loop (rate counters would print
// pct_peak as "/s").
void set_throughput(benchmark::State& state, double gflop_per_iteration, double seconds) {
  const double gflops = gflop_per_iteration * double(state.iterations()) / seconds;
  state.counters["GFLOP/s"] = gflops;
  state.counters["pct_peak"] = gflops / g_peak_gflops * 100.0;
}

void BM_PeakFma(benchmark::State& state) {
  int64_t flops = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) flops = run_peak_loop(kPeakIterations / 16);
  set_throughput(state, double(flops) * 1e-9, seconds_since(start));
}

struct GemmShape {
  const char* name;
  bool trans_a, trans_b;
  int64_t M, N, K;
};

// Squares (A x B) and the linear layers of the reference workloads (x W^T, W stored
// [out, in]; /work/shared/workloads/README.md).
const GemmShape kShapes[] = {
    {"square_256", false, false, 256, 256, 256},
    {"square_512", false, false, 512, 512, 512},
    {"square_1024", false, false, 1024, 1024, 1024},
    {"square_2048", false, false, 2048, 2048, 2048},
    {"vitcap_qkv", false, true, 32 * 65, 576, 192},
    {"vitcap_mlp_up", false, true, 32 * 65, 768, 192},
    {"vitcap_mlp_down", false, true, 32 * 65, 192, 768},
    {"vitcap_head", false, true, 32 * 16, 1024, 192},
    {"vitb16_qkv", false, true, 8 * 197, 2304, 768},
    {"vitb16_mlp_up", false, true, 8 * 197, 3072, 768},
};

void BM_Gemm(benchmark::State& state, GemmShape s) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> A(size_t(s.M * s.K)), B(size_t(s.K * s.N)), C(size_t(s.M * s.N));
  for (float& x : A) x = dist(rng);
  for (float& x : B) x = dist(rng);
  const int64_t lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    iris::cpu::gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                    C.data(), s.N);
    benchmark::ClobberMemory();
  }
  set_throughput(state, 2e-9 * double(s.M) * double(s.N) * double(s.K), seconds_since(start));
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("IRIS_NUM_THREADS") == nullptr) iris::set_num_threads(2);
  // IRIS_GEMM_ISA=avx2|generic times a narrower fp32 path (the peak follows it).
  if (const char* isa = std::getenv("IRIS_GEMM_ISA")) {
    if (!iris::cpu::detail::gemm_force_isa(isa)) {
      std::fprintf(stderr, "IRIS_GEMM_ISA=%s is not available on this CPU\n", isa);
      return 1;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_peak_gflops = measure_peak_gflops();
  std::printf("gemm isa: %s, threads: %d, peak FMA: %.1f GFLOP/s\n", iris::cpu::gemm_isa(),
              iris::num_threads(), g_peak_gflops);
  std::fflush(stdout);
  benchmark::RegisterBenchmark("BM_PeakFma", BM_PeakFma)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (const GemmShape& s : kShapes) {
    const std::string name = std::string("BM_Gemm/") + s.name + "/M" + std::to_string(s.M) + "_N" +
                             std::to_string(s.N) + "_K" + std::to_string(s.K) +
                             (s.trans_b ? "_NT" : "_NN");
    benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, s)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
