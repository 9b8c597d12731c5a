// `iris bench workload`: torch_ref.py's `time` command with iris's models. vit-cap and cnn-rnn:
// one training step (forward, cross-entropy, backward, AdamW lr 1e-4) at batch 32 on 64x64
// images and 17 tokens; vit-b16: the eval-mode forward at batch 8 on 224x224. The median of
// the timed steps after 2 warm-up steps (vit-b16: max(2, steps / 2) steps after 1).
#include "tools/bench_workload.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/allocator.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "models/decode.h"
#include "models/vit.h"
#include "models/zoo.h"
#include "nn/json_lite.h"
#include "nn/optim.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

// Process peak resident set in MiB (VmHWM), 0 where /proc is absent.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

double median_step_ms(const std::function<void()>& step, int steps, int warm) {
  for (int i = 0; i < warm; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void reset_peak_of(Device d) { allocator_for(d.type).reset_peak(d.index); }

// The last step's result is read back, so a step is complete when the clock stops.
void wait_for(const Tensor& t) { (void)t.to_vector<float>(); }

}  // namespace

WorkloadResult run_workload(const WorkloadOptions& opt) {
  const std::string& name = opt.workload;
  IRIS_CHECK(name == "vit-cap" || name == "cnn-rnn" || name == "vit-b16",
             "iris bench workload: unknown workload '", name, "' (vit-cap, cnn-rnn, vit-b16)");
  IRIS_CHECK(opt.steps >= 1, "iris bench workload: --steps must be >= 1, got ", opt.steps);
  IRIS_CHECK(opt.precision == "fp32" || opt.precision == "bf16",
             "iris bench workload: --precision must be fp32 or bf16, got '", opt.precision, "'");
  const Device device = parse_device(opt.device);
  IRIS_CHECK(opt.precision == "fp32" || device.is_cuda(),
             "iris bench workload: --precision bf16 on the CPU: the CPU runs fp32 (mixed "
             "precision is CUDA-only)");
  if (device.is_cuda()) {
    try {
      (void)Tensor::empty({1}, DType::f32, device);
    } catch (const Error& e) {
      IRIS_FAIL("iris bench workload: --device ", opt.device, ": no GPU (", e.what(), ")");
    }
  }

  WorkloadResult r;
  r.workload = name;
  r.device = device.str();
  r.threads = num_threads();
  Generator gen(0);
  std::mt19937_64 rng(0);
  if (name == "vit-b16") {
    r.what = "forward";
    r.batch = opt.batch > 0 ? opt.batch : 8;
    auto model = models::build_model(name, opt.config, &gen);
    model->to(device);
    model->eval();
    const int64_t size =
        models::config_from_json<models::VitConfig>(models::zoo_config(name, opt.config), "vit-b16")
            .image_size;
    const Tensor img = randn({r.batch, 3, size, size}, DType::f32, Device::cpu(), &gen).to(device);
    NoGradGuard no_grad;
    AutocastGuard autocast(DType::bf16, opt.precision == "bf16");
    reset_peak_of(device);
    r.timed_steps = std::max(2, opt.steps / 2);
    r.ms = median_step_ms([&] { wait_for(model->forward(img)); }, r.timed_steps, 1);
  } else {
    r.what = "train step";
    r.batch = opt.batch > 0 ? opt.batch : 32;
    auto model = models::build_captioner(name, opt.config, &gen);
    model->to(device);
    model->train();
    const Tensor img = randn({r.batch, 3, 64, 64}, DType::f32, Device::cpu(), &gen).to(device);
    const int64_t vocab = 1024;
    std::vector<int64_t> ids(static_cast<size_t>(r.batch * 17));
    for (int64_t& t : ids) t = int64_t(rng() % uint64_t(vocab));
    const Tensor tokens = Tensor::from_vector(ids, {r.batch, 17}).to(device);
    nn::AdamWOptions adamw;
    adamw.lr = 1e-4;  // torch.optim.AdamW(lr=1e-4); the other defaults are torch's
    nn::AdamW optimizer(*model, adamw);
    reset_peak_of(device);
    r.timed_steps = opt.steps;
    r.ms = median_step_ms(
        [&] {
          std::optional<AutocastGuard> autocast;  // bf16: autocast, fp32 master weights
          if (opt.precision == "bf16") autocast.emplace(DType::bf16);
          const models::CaptionLoss cl = models::caption_loss(*model, img, tokens);
          autocast.reset();
          optimizer.zero_grad();
          cl.loss.backward();
          optimizer.step();
          wait_for(cl.loss);
        },
        r.timed_steps, 2);
  }
  r.peak_allocated_mb = double(memory_stats(device).peak_allocated) / (1 << 20);
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

std::string workload_json(const WorkloadResult& r) {
  const bool cpu = r.device == "cpu";
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "{\"workload\": %s, \"what\": %s, \"batch\": %lld, \"ms\": %.2f, "
                "\"peak_mem_mb\": %.1f, \"peak_mem_source\": %s, \"alloc_peak_mb\": %.1f, "
                "\"threads\": %d, \"device\": %s, \"steps\": %d}",
                json::quote(r.workload).c_str(), json::quote(r.what).c_str(),
                static_cast<long long>(r.batch), r.ms, cpu ? r.peak_rss_mb : r.peak_allocated_mb,
                json::quote(cpu ? "process peak RSS (VmHWM)" : "iris CUDA allocator peak").c_str(),
                r.peak_allocated_mb, r.threads, json::quote(r.device).c_str(), r.timed_steps);
  return buf;
}

namespace {

struct BenchCliOptions {
  std::vector<std::string> workloads;
  WorkloadOptions w;
  int threads = 0;
};

int run_bench_workload_cli(const BenchCliOptions& cli) {
  if (cli.threads > 0) set_num_threads(cli.threads);
  for (const std::string& name : cli.workloads) {
    WorkloadOptions w = cli.w;
    w.workload = name;
    std::printf("%s\n", workload_json(run_workload(w)).c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

IRIS_COMMAND(
    bench, "benchmarks: `iris bench workload` (torch_ref.py time, with iris)", [](CLI::App& cmd) {
      auto opt = std::make_shared<BenchCliOptions>();
      cmd.require_subcommand(1);
      CLI::App* wl = cmd.add_subcommand(
          "workload", "time a reference workload as ../shared/workloads/torch_ref.py");
      wl->add_option("workloads", opt->workloads, "vit-cap | cnn-rnn | vit-b16")->required();
      wl->add_option("--device", opt->w.device, "cpu | cuda")->capture_default_str();
      wl->add_option("--steps", opt->w.steps, "timed steps (median)")->capture_default_str();
      wl->add_option("--threads", opt->threads, "CPU threads");
      wl->add_option("--precision", opt->w.precision, "fp32 | bf16 (CUDA only)")
          ->capture_default_str();
      return [opt] { return run_bench_workload_cli(*opt); };
    });

}  // namespace iris::tools
