// conv2d kernel throughput (fp32) on the CNN of the cnn-rnn workload (torch_ref.py): batch
// 32, 64x64 input, 4 stages of (3x3 stride 2, 3x3 stride 1), 32/64/128/256 channels, no
// bias. Each layer reports GFLOP/s for forward, backward-data and backward-weight (2 N Cout
// OH OW Cin kH kW flops each); "all8" runs the eight layers back to back. Threads:
// IRIS_NUM_THREADS, default 2. The PyTorch side is bench/torch_conv.py.
//   bench_conv [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "kernels/conv.h"
#include "kernels/cpu/gemm.h"

namespace {

using iris::Tensor;
using iris::kernels::Conv2dParams;

struct Layer {
  std::string name;
  int64_t N, Cin, H, W, Cout, stride;
  int64_t OH() const { return (H + 2 - 3) / stride + 1; }
  int64_t OW() const { return (W + 2 - 3) / stride + 1; }
  double flops() const { return 2.0 * N * Cout * OH() * OW() * Cin * 9; }
  Conv2dParams params() const { return {stride, stride, 1, 1, 1, 1, 1}; }
};

std::vector<Layer> cnn_rnn_layers() {
  std::vector<Layer> layers;
  int64_t c = 3, size = 64;
  int stage = 1;
  for (int64_t o : {32, 64, 128, 256}) {
    layers.push_back(
        {"s" + std::to_string(stage) + "a_" + std::to_string(c) + "to" + std::to_string(o) + "_s2",
         32, c, size, size, o, 2});
    size /= 2;
    layers.push_back(
        {"s" + std::to_string(stage) + "b_" + std::to_string(o) + "to" + std::to_string(o) + "_s1",
         32, o, size, size, o, 1});
    c = o;
    ++stage;
  }
  return layers;
}

enum class Pass { kForward, kBackwardData, kBackwardWeight };

// Operands of one layer, random and dense.
struct Operands {
  Tensor x, w, out, dout, dx, dw;
  explicit Operands(const Layer& l) {
    iris::Generator gen(7);
    x = iris::randn({l.N, l.Cin, l.H, l.W}, iris::DType::f32, iris::Device::cpu(), &gen);
    w = iris::randn({l.Cout, l.Cin, 3, 3}, iris::DType::f32, iris::Device::cpu(), &gen);
    out = Tensor::empty({l.N, l.Cout, l.OH(), l.OW()});
    dout = iris::randn(out.shape(), iris::DType::f32, iris::Device::cpu(), &gen);
    dx = Tensor::empty(x.shape());
    dw = Tensor::empty(w.shape());
  }
};

void run_pass(Pass pass, const Layer& l, const Operands& o) {
  const iris::Device cpu = iris::Device::cpu();
  switch (pass) {
    case Pass::kForward:
      iris::kernels::conv2d_forward_table().get(cpu)(o.x, o.w, Tensor(), l.params(), o.out);
      break;
    case Pass::kBackwardData:
      iris::kernels::conv2d_backward_data_table().get(cpu)(o.dout, o.w, l.params(), o.dx);
      break;
    case Pass::kBackwardWeight:
      iris::kernels::conv2d_backward_weight_table().get(cpu)(o.dout, o.x, l.params(), o.dw,
                                                             Tensor());
      break;
  }
}

void BM_Layer(benchmark::State& state, Pass pass, const Layer& l) {
  const Operands o(l);
  for (auto _ : state) run_pass(pass, l, o);
  state.counters["GFLOP/s"] = benchmark::Counter(
      l.flops() * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
}

void BM_All(benchmark::State& state, Pass pass) {
  const std::vector<Layer> layers = cnn_rnn_layers();
  std::vector<Operands> ops;
  double flops = 0;
  for (const Layer& l : layers) ops.emplace_back(l), flops += l.flops();
  for (auto _ : state)
    for (size_t i = 0; i < layers.size(); ++i) run_pass(pass, layers[i], ops[i]);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
}

const char* pass_name(Pass p) {
  switch (p) {
    case Pass::kForward:
      return "forward";
    case Pass::kBackwardData:
      return "backward_data";
    case Pass::kBackwardWeight:
      return "backward_weight";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("IRIS_NUM_THREADS");
  iris::set_num_threads(env ? std::atoi(env) : 2);
  std::printf("threads %d, gemm isa %s\n", iris::num_threads(), iris::cpu::gemm_isa());
  static const std::vector<Layer> layers = cnn_rnn_layers();
  for (Pass pass : {Pass::kForward, Pass::kBackwardData, Pass::kBackwardWeight}) {
    for (const Layer& l : layers)
      benchmark::RegisterBenchmark((std::string(pass_name(pass)) + "/" + l.name).c_str(), BM_Layer,
                                   pass, l)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    benchmark::RegisterBenchmark((std::string(pass_name(pass)) + "/all8").c_str(), BM_All, pass)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
