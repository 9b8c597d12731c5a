// Layer norm (forward, backward), softmax (forward, backward) and cross-entropy
// (forward + backward) in GB/s of compulsory traffic, float32, through the CPU
// kernel tables, at 1 and 2 threads. Each kernel has a plain single-threaded
// loop beside it ("naive": the obvious code, double accumulators, std::exp) as
// the baseline: compare the 1-thread figures for per-core quality.
//   bench_norm [--benchmark_filter=LayerNorm]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"

namespace {

using iris::Device;
using iris::DType;
using iris::Tensor;

Tensor random_tensor(const iris::Shape& shape, double lo, double hi, uint64_t seed) {
  iris::Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::f32);
  iris::kernels::random_table().get(Device::cpu())(iris::kernels::RandomKind::uniform, t, lo,
                                                   hi - lo, gen.seed(), gen.reserve(t.numel()));
  return t;
}

// Reports bytes / second for `bytes` of traffic per iteration.
void set_bytes(benchmark::State& st, int64_t bytes) {
  st.SetBytesProcessed(st.iterations() * bytes);
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(st.iterations() * bytes) / 1e9,
                                           benchmark::Counter::kIsRate);
}

struct Shape2 {
  int64_t M, N;
};

// ---- layer norm ----

void layer_norm_forward(benchmark::State& st, Shape2 s) {
  iris::set_num_threads(static_cast<int>(st.range(0)));
  const Tensor x = random_tensor({s.M, s.N}, -2, 2, 1), w = random_tensor({s.N}, 0, 2, 2),
               b = random_tensor({s.N}, -1, 1, 3);
  Tensor y = Tensor::empty({s.M, s.N}), mean = Tensor::empty({s.M}), rstd = Tensor::empty({s.M});
  auto* fn = iris::kernels::layer_norm_forward_table().get(Device::cpu());
  for (auto _ : st) fn(x, w, b, 1e-5, y, mean, rstd);
  set_bytes(st, 2 * s.M * s.N * 4);
}

void layer_norm_forward_naive(benchmark::State& st, Shape2 s) {
  const Tensor x = random_tensor({s.M, s.N}, -2, 2, 1), w = random_tensor({s.N}, 0, 2, 2),
               b = random_tensor({s.N}, -1, 1, 3);
  Tensor y = Tensor::empty({s.M, s.N});
  const float *px = x.data<float>(), *pw = w.data<float>(), *pb = b.data<float>();
  float* py = y.data<float>();
  for (auto _ : st) {
    for (int64_t r = 0; r < s.M; ++r) {
      const float* xr = px + r * s.N;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < s.N; ++i) mean += xr[i];
      mean /= s.N;
      for (int64_t i = 0; i < s.N; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const double rstd = 1 / std::sqrt(var / s.N + 1e-5);
      for (int64_t i = 0; i < s.N; ++i)
        py[r * s.N + i] = static_cast<float>((xr[i] - mean) * rstd * pw[i] + pb[i]);
    }
    benchmark::DoNotOptimize(py);
  }
  set_bytes(st, 2 * s.M * s.N * 4);
}

void layer_norm_backward(benchmark::State& st, Shape2 s) {
  iris::set_num_threads(static_cast<int>(st.range(0)));
  const Tensor x = random_tensor({s.M, s.N}, -2, 2, 1), w = random_tensor({s.N}, 0, 2, 2),
               b = random_tensor({s.N}, -1, 1, 3), dy = random_tensor({s.M, s.N}, -1, 1, 4);
  Tensor y = Tensor::empty({s.M, s.N}), mean = Tensor::empty({s.M}), rstd = Tensor::empty({s.M});
  iris::kernels::layer_norm_forward_table().get(Device::cpu())(x, w, b, 1e-5, y, mean, rstd);
  Tensor dx = Tensor::empty({s.M, s.N}), dw = Tensor::empty({s.N}), db = Tensor::empty({s.N});
  auto* fn = iris::kernels::layer_norm_backward_table().get(Device::cpu());
  for (auto _ : st) fn(dy, x, mean, rstd, w, dx, dw, db);
  set_bytes(st, 3 * s.M * s.N * 4);
}

void layer_norm_backward_naive(benchmark::State& st, Shape2 s) {
  const Tensor x = random_tensor({s.M, s.N}, -2, 2, 1), w = random_tensor({s.N}, 0, 2, 2),
               dy = random_tensor({s.M, s.N}, -1, 1, 4);
  std::vector<float> dx(s.M * s.N), dw(s.N), db(s.N);
  const float *px = x.data<float>(), *pw = w.data<float>(), *pdy = dy.data<float>();
  for (auto _ : st) {
    std::fill(dw.begin(), dw.end(), 0.0f);
    std::fill(db.begin(), db.end(), 0.0f);
    for (int64_t r = 0; r < s.M; ++r) {
      const float* xr = px + r * s.N;
      const float* dr = pdy + r * s.N;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < s.N; ++i) mean += xr[i];
      mean /= s.N;
      for (int64_t i = 0; i < s.N; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const double rstd = 1 / std::sqrt(var / s.N + 1e-5);
      double mg = 0, mgx = 0;
      for (int64_t i = 0; i < s.N; ++i) {
        const double xhat = (xr[i] - mean) * rstd;
        mg += dr[i] * pw[i];
        mgx += dr[i] * pw[i] * xhat;
        dw[i] += static_cast<float>(dr[i] * xhat);
        db[i] += dr[i];
      }
      mg /= s.N;
      mgx /= s.N;
      for (int64_t i = 0; i < s.N; ++i)
        dx[r * s.N + i] =
            static_cast<float>(rstd * (dr[i] * pw[i] - mg - (xr[i] - mean) * rstd * mgx));
    }
    benchmark::DoNotOptimize(dx.data());
  }
  set_bytes(st, 3 * s.M * s.N * 4);
}

// ---- softmax ----

void softmax_forward(benchmark::State& st, Shape2 s) {
  iris::set_num_threads(static_cast<int>(st.range(0)));
  const Tensor x = random_tensor({s.M, s.N}, -8, 8, 5);
  Tensor y = Tensor::empty({s.M, s.N});
  auto* fn = iris::kernels::softmax_forward_table().get(Device::cpu());
  for (auto _ : st) fn(x, 1, false, y);
  set_bytes(st, 2 * s.M * s.N * 4);
}

void softmax_forward_naive(benchmark::State& st, Shape2 s) {
  const Tensor x = random_tensor({s.M, s.N}, -8, 8, 5);
  Tensor y = Tensor::empty({s.M, s.N});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (auto _ : st) {
    for (int64_t r = 0; r < s.M; ++r) {
      const float* xr = px + r * s.N;
      float* yr = py + r * s.N;
      float mx = xr[0];
      for (int64_t i = 1; i < s.N; ++i) mx = std::max(mx, xr[i]);
      double sum = 0;
      for (int64_t i = 0; i < s.N; ++i) sum += yr[i] = std::exp(xr[i] - mx);
      const float inv = static_cast<float>(1 / sum);
      for (int64_t i = 0; i < s.N; ++i) yr[i] *= inv;
    }
    benchmark::DoNotOptimize(py);
  }
  set_bytes(st, 2 * s.M * s.N * 4);
}

void softmax_backward(benchmark::State& st, Shape2 s) {
  iris::set_num_threads(static_cast<int>(st.range(0)));
  const Tensor x = random_tensor({s.M, s.N}, -8, 8, 5), dy = random_tensor({s.M, s.N}, -1, 1, 6);
  Tensor y = Tensor::empty({s.M, s.N}), dx = Tensor::empty({s.M, s.N});
  iris::kernels::softmax_forward_table().get(Device::cpu())(x, 1, false, y);
  auto* fn = iris::kernels::softmax_backward_table().get(Device::cpu());
  for (auto _ : st) fn(dy, y, 1, false, dx);
  set_bytes(st, 3 * s.M * s.N * 4);
}

// ---- cross-entropy (forward then backward, as in training) ----

void cross_entropy_step(benchmark::State& st, Shape2 s) {
  iris::set_num_threads(static_cast<int>(st.range(0)));
  const Tensor x = random_tensor({s.M, s.N, 1}, -8, 8, 7);
  std::vector<int64_t> t(s.M);
  for (int64_t i = 0; i < s.M; ++i) t[i] = (i * 7919) % s.N;
  const Tensor target = Tensor::from_vector(t, {s.M, 1});
  Tensor loss = Tensor::empty({s.M, 1}), lse = Tensor::empty({s.M, 1});
  const Tensor g = Tensor::scalar(1.0f / static_cast<float>(s.M));
  const Tensor dloss = g.as_strided({s.M, 1}, {0, 0}, 0);
  Tensor dx = Tensor::empty({s.M, s.N, 1});
  auto* fwd = iris::kernels::cross_entropy_forward_table().get(Device::cpu());
  auto* bwd = iris::kernels::cross_entropy_backward_table().get(Device::cpu());
  for (auto _ : st) {
    fwd(x, target, -100, 0.1, loss, lse);
    bwd(x, target, lse, dloss, -100, 0.1, dx);
  }
  set_bytes(st, 3 * s.M * s.N * 4);  // read logits twice, write dlogits once
}

void cross_entropy_step_naive(benchmark::State& st, Shape2 s) {
  const Tensor x = random_tensor({s.M, s.N}, -8, 8, 7);
  std::vector<float> dx(s.M * s.N), loss(s.M);
  const float* px = x.data<float>();
  const double ls = 0.1;
  for (auto _ : st) {
    for (int64_t r = 0; r < s.M; ++r) {
      const float* xr = px + r * s.N;
      const int64_t t = (r * 7919) % s.N;
      float mx = xr[0];
      for (int64_t i = 1; i < s.N; ++i) mx = std::max(mx, xr[i]);
      double sum = 0, xsum = 0;
      for (int64_t i = 0; i < s.N; ++i) sum += std::exp(xr[i] - mx), xsum += xr[i];
      const double lse = mx + std::log(sum);
      loss[r] = static_cast<float>((1 - ls) * (lse - xr[t]) + ls / s.N * (s.N * lse - xsum));
      const double g = 1.0 / s.M;
      for (int64_t i = 0; i < s.N; ++i)
        dx[r * s.N + i] =
            static_cast<float>(g * (std::exp(xr[i] - lse) - ls / s.N - (i == t ? 1 - ls : 0)));
    }
    benchmark::DoNotOptimize(dx.data());
  }
  set_bytes(st, 3 * s.M * s.N * 4);
}

std::string name(const char* what, Shape2 s) {
  return std::string(what) + "/" + std::to_string(s.M) + "x" + std::to_string(s.N);
}

void register_all() {
  // vit-cap (2080 tokens x 192), ViT-B (8 * 197 x 768), a 1024-wide layer, a GPT-3-sized row.
  const Shape2 ln_shapes[] = {{2080, 192}, {8 * 197, 768}, {2080, 1024}, {256, 12288}};
  for (Shape2 s : ln_shapes) {
    benchmark::RegisterBenchmark(name("LayerNormForward", s).c_str(), layer_norm_forward, s)
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->UseRealTime();
    benchmark::RegisterBenchmark(name("LayerNormForwardNaive", s).c_str(), layer_norm_forward_naive,
                                 s)
        ->UseRealTime();
    benchmark::RegisterBenchmark(name("LayerNormBackward", s).c_str(), layer_norm_backward, s)
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->UseRealTime();
    benchmark::RegisterBenchmark(name("LayerNormBackwardNaive", s).c_str(),
                                 layer_norm_backward_naive, s)
        ->UseRealTime();
  }
  const Shape2 vocab{2080, 1024};
  benchmark::RegisterBenchmark(name("SoftmaxForward", vocab).c_str(), softmax_forward, vocab)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("SoftmaxForwardNaive", vocab).c_str(), softmax_forward_naive,
                               vocab)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("SoftmaxBackward", vocab).c_str(), softmax_backward, vocab)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("CrossEntropyFwdBwd", vocab).c_str(), cross_entropy_step, vocab)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("CrossEntropyFwdBwdNaive", vocab).c_str(),
                               cross_entropy_step_naive, vocab)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
