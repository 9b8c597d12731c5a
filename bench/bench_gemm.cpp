// fp32 GEMM throughput against this machine's own FMA peak. The peak is measured first
// (tools/profile_limits.h, shared with `iris profile`), then each shape reports GFLOP/s and
// pct_peak. Threads: IRIS_NUM_THREADS, default 2;
// IRIS_GEMM_ISA forces the fp32 path.
//   bench_gemm [--benchmark_filter=...]         (see bench/README.md, section GEMM)
#include <benchmark/benchmark.h>

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
#include "tools/profile_limits.h"

namespace {

using iris::tools::limits::kPeakIterations;
using iris::tools::limits::measure_fma_peak_gflops;
using iris::tools::limits::run_peak_loop;

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
  g_peak_gflops = measure_fma_peak_gflops();
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
