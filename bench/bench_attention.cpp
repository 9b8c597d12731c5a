// Fused CPU attention (fp32) against the materialised-score baseline that an unfused
// framework runs (PyTorch's math path): S = scale Q K^T as a batched GEMM into a
// [B, H, Lq, Lk] tensor, a softmax over it, O = P V; its backward keeps P and dP.
// Flops: 4 Lq Lk D per head forward (2.5x that backward), halved when causal, for both
// (the baseline computes the masked half anyway). Ends with a table of speedups and of the
// score memory the baseline needs. Threads: IRIS_NUM_THREADS, default all cores.
//   bench_attention [--benchmark_filter=vitb]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"

namespace {

using iris::cpu::AttentionParams;

struct Shape {
  const char* name;
  int64_t B, H, Lq, Lk, D;
  bool causal;
};

// vit-cap: ViT encoder self-attention, caption decoder self- (causal) and cross-attention;
// ViT-B/16 at 224 px; and a long causal sequence.
constexpr Shape kShapes[] = {
    {"vitcap_enc_self_L65", 32, 3, 65, 65, 64, false},
    {"vitcap_dec_self_L16_causal", 32, 3, 16, 16, 64, true},
    {"vitcap_dec_cross_16x65", 32, 3, 16, 65, 64, false},
    {"vitb_self_L197", 8, 12, 197, 197, 64, false},
    {"long_L1024_causal", 1, 4, 1024, 1024, 64, true},
};

double forward_flops(const Shape& s) {
  const double flops = 4.0 * double(s.B * s.H) * double(s.Lq) * double(s.Lk) * double(s.D);
  return s.causal ? flops / 2 : flops;
}

double score_mib(const Shape& s) {
  return double(s.B * s.H * s.Lq * s.Lk) * sizeof(float) / (1024.0 * 1024.0);
}

struct Tensors {
  AttentionParams p;
  std::vector<float> q, k, v, o, lse, dout, dq, dk, dv;
  explicit Tensors(const Shape& s)
      : p(iris::cpu::attention_params_bhld(s.B, s.H, s.Lq, s.Lk, s.D, s.D)) {
    p.causal = s.causal;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    auto random = [&](int64_t n) {
      std::vector<float> x(n);
      for (float& e : x) e = uniform(rng);
      return x;
    };
    const int64_t q_size = s.B * s.H * s.Lq * s.D, kv_size = s.B * s.H * s.Lk * s.D;
    q = random(q_size), k = random(kv_size), v = random(kv_size), dout = random(q_size);
    o.resize(q_size), dq.resize(q_size), dk.resize(kv_size), dv.resize(kv_size);
    lse.resize(s.B * s.H * s.Lq);
  }
};

// ---------------------------------------------------------------------------------------
// The materialised baseline (contiguous [B, H, L, D] only).

struct Materialised {
  std::vector<float> scores, dscores;  // [B, H, Lq, Lk]: P, and dP then dS
};

void softmax_rows(const Shape& s, float* scores) {
  const int64_t rows = s.B * s.H * s.Lq;
  iris::parallel_for(0, rows, 64, [&](int64_t first, int64_t last) {
    for (int64_t row = first; row < last; ++row) {
      float* x = scores + row * s.Lk;
      const int64_t i = row % s.Lq;
      const int64_t visible = s.causal ? std::min(s.Lk, i + 1 + s.Lk - s.Lq) : s.Lk;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < visible; ++j) m = std::max(m, x[j]);
      float l = 0;
      for (int64_t j = 0; j < visible; ++j) l += (x[j] = std::exp(x[j] - m));
      for (int64_t j = 0; j < visible; ++j) x[j] /= l;
      for (int64_t j = std::max<int64_t>(visible, 0); j < s.Lk; ++j) x[j] = 0;
    }
  });
}

void materialised_forward(const Shape& s, Tensors& t, Materialised& m) {
  const int64_t batch = s.B * s.H;
  iris::cpu::gemm_batched(batch, false, true, s.Lq, s.Lk, s.D, float(t.p.scale), t.q.data(), s.D,
                          s.Lq * s.D, t.k.data(), s.D, s.Lk * s.D, 0.0f, m.scores.data(), s.Lk,
                          s.Lq * s.Lk);
  softmax_rows(s, m.scores.data());
  iris::cpu::gemm_batched(batch, false, false, s.Lq, s.D, s.Lk, 1.0f, m.scores.data(), s.Lk,
                          s.Lq * s.Lk, t.v.data(), s.D, s.Lk * s.D, 0.0f, t.o.data(), s.D,
                          s.Lq * s.D);
}

void materialised_backward(const Shape& s, Tensors& t, Materialised& m) {
  const int64_t batch = s.B * s.H, qd = s.Lq * s.D, kd = s.Lk * s.D, qk = s.Lq * s.Lk;
  const float scale = float(t.p.scale);
  // dV = P^T dO, dP = dO V^T
  iris::cpu::gemm_batched(batch, true, false, s.Lk, s.D, s.Lq, 1.0f, m.scores.data(), s.Lk, qk,
                          t.dout.data(), s.D, qd, 0.0f, t.dv.data(), s.D, kd);
  iris::cpu::gemm_batched(batch, false, true, s.Lq, s.Lk, s.D, 1.0f, t.dout.data(), s.D, qd,
                          t.v.data(), s.D, kd, 0.0f, m.dscores.data(), s.Lk, qk);
  // dS = P (dP - rowsum(P dP))
  iris::parallel_for(0, batch * s.Lq, 64, [&](int64_t first, int64_t last) {
    for (int64_t row = first; row < last; ++row) {
      const float* p = m.scores.data() + row * s.Lk;
      float* ds = m.dscores.data() + row * s.Lk;
      float di = 0;
      for (int64_t j = 0; j < s.Lk; ++j) di += p[j] * ds[j];
      for (int64_t j = 0; j < s.Lk; ++j) ds[j] = p[j] * (ds[j] - di);
    }
  });
  // dQ = scale dS K, dK = scale dS^T Q
  iris::cpu::gemm_batched(batch, false, false, s.Lq, s.D, s.Lk, scale, m.dscores.data(), s.Lk, qk,
                          t.k.data(), s.D, kd, 0.0f, t.dq.data(), s.D, qd);
  iris::cpu::gemm_batched(batch, true, false, s.Lk, s.D, s.Lq, scale, m.dscores.data(), s.Lk, qk,
                          t.q.data(), s.D, qd, 0.0f, t.dk.data(), s.D, kd);
}

// ---------------------------------------------------------------------------------------

enum class Pass { kForward, kBackward };
enum class Impl { kFused, kMaterialised };

void set_counters(benchmark::State& state, const Shape& s, Pass pass) {
  const double flops = forward_flops(s) * (pass == Pass::kBackward ? 2.5 : 1.0);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = iris::num_threads();
}

void bench_shape(benchmark::State& state, const Shape& s, Pass pass, Impl impl) {
  Tensors t(s);
  iris::cpu::attention_forward<float>(t.p, t.q.data(), t.k.data(), t.v.data(), t.o.data(),
                                      t.lse.data());
  Materialised m;
  if (impl == Impl::kMaterialised) {
    m.scores.resize(s.B * s.H * s.Lq * s.Lk);
    m.dscores.resize(pass == Pass::kBackward ? m.scores.size() : 0);
    materialised_forward(s, t, m);
  }
  // Score-sized buffers alive during the pass (the fused kernels keep none).
  state.counters["score_MiB"] =
      impl == Impl::kFused ? 0.0 : score_mib(s) * (pass == Pass::kBackward ? 2 : 1);
  for (auto _ : state) {
    if (impl == Impl::kFused && pass == Pass::kForward) {
      iris::cpu::attention_forward<float>(t.p, t.q.data(), t.k.data(), t.v.data(), t.o.data(),
                                          t.lse.data());
    } else if (impl == Impl::kFused) {
      iris::cpu::attention_backward<float>(t.p, t.q.data(), t.k.data(), t.v.data(), t.o.data(),
                                           t.dout.data(), t.lse.data(), t.dq.data(), t.dk.data(),
                                           t.dv.data());
    } else if (pass == Pass::kForward) {
      materialised_forward(s, t, m);
    } else {
      materialised_backward(s, t, m);
    }
    benchmark::ClobberMemory();
  }
  set_counters(state, s, pass);
}

std::string bench_name(const Shape& s, Pass pass, Impl impl) {
  return std::string(impl == Impl::kFused ? "fused" : "materialised") +
         (pass == Pass::kForward ? "_fwd/" : "_bwd/") + s.name;
}

// Console output as usual, and each run's time kept for the speedup table.
class TimesReporter : public benchmark::ConsoleReporter {
 public:
  TimesReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration)
        times_[run.run_name.function_name] = run.GetAdjustedRealTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double time(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? std::nan("") : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

void print_speedups(const TimesReporter& reporter) {
  std::printf("\n%-28s %-4s %12s %16s %8s %16s\n", "shape", "pass", "fused ms", "materialised ms",
              "speedup", "score MiB (mat.)");
  for (const Shape& s : kShapes) {
    for (Pass pass : {Pass::kForward, Pass::kBackward}) {
      const double fused = reporter.time(bench_name(s, pass, Impl::kFused));
      const double mat = reporter.time(bench_name(s, pass, Impl::kMaterialised));
      if (std::isnan(fused) && std::isnan(mat)) continue;
      std::printf("%-28s %-4s %12.3f %16.3f %7.2fx %16.1f\n", s.name,
                  pass == Pass::kForward ? "fwd" : "bwd", fused, mat, mat / fused,
                  score_mib(s) * (pass == Pass::kBackward ? 2 : 1));
    }
  }
  std::printf("fp32 attention tiles: %s, threads: %d\n", iris::cpu::attention_isa(),
              iris::num_threads());
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes) {
    for (Pass pass : {Pass::kForward, Pass::kBackward}) {
      for (Impl impl : {Impl::kFused, Impl::kMaterialised}) {
        benchmark::RegisterBenchmark(
            bench_name(s, pass, impl).c_str(),
            [&s, pass, impl](benchmark::State& state) { bench_shape(state, s, pass, impl); })
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.3)
            ->UseRealTime();
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  TimesReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_speedups(reporter);
  benchmark::Shutdown();
  return 0;
}
