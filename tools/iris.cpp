// The iris command line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "core/error.h"
#include "core/parallel.h"
#include "tools/demo.h"
#include "tools/forward.h"

int main(int argc, char** argv) {
  CLI::App app{"iris: a tensor and autograd engine for vision-and-language models"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: IRIS_NUM_THREADS or all cores)");

  iris::tools::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "train a tiny VQA model on built-in data (CPU)");
  demo_cmd->add_option("--steps", demo.steps, "training steps")->capture_default_str();
  demo_cmd->add_option("--batch", demo.batch, "batch size")->capture_default_str();
  demo_cmd->add_option("--lr", demo.lr, "AdamW learning rate")->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "data and init seed")->capture_default_str();

  iris::tools::ForwardOptions fwd;
  CLI::App* forward_cmd = app.add_subcommand(
      "forward", "one training-mode forward (+ gradients) of a captioner, as torch_ref.py export");
  forward_cmd->add_option("--model", fwd.model, "vit-cap | cnn-rnn")->required();
  forward_cmd->add_option("--weights", fwd.weights, "state_dict safetensors")->required();
  forward_cmd->add_option("--inputs", fwd.inputs, "image f32 [B,3,H,W], tokens i64 [B,T+1]")
      ->required();
  forward_cmd->add_option("--out", fwd.out, "output safetensors")->required();
  forward_cmd->add_flag("--grads", fwd.grads, "also write loss and grad.<parameter>");
  forward_cmd->add_option("--device", fwd.device, "cpu | cuda")->capture_default_str();
  forward_cmd->add_option("--config", fwd.config, "configuration JSON (e.g. {\"heads\": 3})")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) iris::set_num_threads(threads);
    if (*demo_cmd) return iris::tools::run_demo(demo);
    if (*forward_cmd) return iris::tools::run_forward(fwd);
  } catch (const iris::Error& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
