// `iris train`: trains a captioner, a VQA model or a retrieval model into a run directory
// (models/run.h) with a live progress line; Ctrl-C saves a checkpoint that --resume
// continues from.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "models/trainer.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

std::atomic<bool> g_stop{false};

// The first Ctrl-C asks the loop to checkpoint and return; a second one ends the process.
extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

std::string duration(double s) {
  const long long t = static_cast<long long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  return buf;
}

// Prints events: on a terminal the progress line rewrites itself (\r), elsewhere each
// progress event is a line of its own.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(::isatty(STDOUT_FILENO) != 0) {}
  void operator()(const models::TrainEvent& e) {
    using Kind = models::TrainEvent::Kind;
    if (e.kind == Kind::progress) {
      std::printf("%sstep %lld/%lld  epoch %lld/%lld  loss %.4f  lr %.2e  %.1f img/s  ETA %s%s",
                  tty_ ? "\r\033[K" : "", static_cast<long long>(e.step),
                  static_cast<long long>(e.total_steps), static_cast<long long>(e.epoch + 1),
                  static_cast<long long>(e.epochs), e.loss, e.lr, e.images_per_s,
                  duration(e.eta_s).c_str(), tty_ ? "" : "\n");
      open_line_ = tty_;
    } else {
      end_line();
      if (e.kind == Kind::validation)
        std::printf("validation at step %lld: %s %.4f%s\n", static_cast<long long>(e.step),
                    e.metric_name.c_str(), e.metric, e.best ? " (best, model saved)" : "");
      else if (!e.message.empty())
        std::printf("%s\n", e.message.c_str());
    }
    std::fflush(stdout);
  }
  void end_line() {
    if (open_line_) std::printf("\n");
    open_line_ = false;
  }

 private:
  bool tty_;
  bool open_line_ = false;
};

int run_train(models::TrainOptions opt) {
  g_stop.store(false);
  opt.stop = &g_stop;
  auto printer = std::make_shared<ProgressPrinter>();
  opt.sink = [printer](const models::TrainEvent& e) { (*printer)(e); };
  struct sigaction sa = {}, old = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old);
  models::TrainResult r;
  try {
    r = models::train(opt);
  } catch (...) {
    ::sigaction(SIGINT, &old, nullptr);
    printer->end_line();
    throw;
  }
  ::sigaction(SIGINT, &old, nullptr);
  if (r.skipped > 0) {
    std::printf("skipped %lld bad samples:\n", static_cast<long long>(r.skipped));
    for (const auto& m : r.skip_messages) std::printf("  %s\n", m.c_str());
  }
  if (r.stopped)
    std::printf("interrupted at step %lld of %lld: resume with the same command and --resume\n",
                static_cast<long long>(r.steps), static_cast<long long>(r.total_steps));
  std::printf(
      "{\"out\": \"%s\", \"steps\": %lld, \"stopped\": %s, \"loss\": %.6g, \"%s\": %.6g, "
      "\"skipped\": %lld, \"seconds\": %.1f}\n",
      opt.out.c_str(), static_cast<long long>(r.steps), r.stopped ? "true" : "false", r.final_loss,
      r.metric_name.empty() ? "val" : ("val_" + r.metric_name).c_str(), r.best_metric,
      static_cast<long long>(r.skipped), r.seconds);
  return r.stopped ? 130 : 0;
}

}  // namespace

IRIS_COMMAND(
    train, "train a captioning, VQA or retrieval model into a run directory", [](CLI::App& cmd) {
      auto opt = std::make_shared<models::TrainOptions>();
      cmd.add_option("--task", opt->task, "caption | vqa | retrieval (default: the model's)");
      cmd.add_option("--model", opt->model,
                     "vit-cap | cnn-rnn | clip | fusion-early | fusion-late | "
                     "fusion-xattn | image-only | text-only")
          ->required();
      cmd.add_option("--data", opt->data, "training JSONL (COCO .json for captions)")->required();
      cmd.add_option("--val", opt->val, "validation JSONL");
      cmd.add_option("--out", opt->out, "run directory")->required();
      cmd.add_option("--epochs", opt->epochs, "epochs (0: the model's default)");
      cmd.add_option("--steps", opt->steps, "optimizer steps (wins over --epochs)");
      cmd.add_option("--batch", opt->batch, "batch size (0: the model's default)");
      cmd.add_option("--lr", opt->lr, "peak learning rate (0: the model's default)");
      cmd.add_option("--weight-decay", opt->weight_decay, "AdamW weight decay");
      cmd.add_option("--config", opt->config, "model configuration overrides (JSON)")
          ->capture_default_str();
      cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
      cmd.add_option("--precision", opt->precision, "fp32 | bf16 | fp16 (bf16/fp16: CUDA only)")
          ->capture_default_str();
      cmd.add_flag("--resume", opt->resume, "continue from RUN_DIR's checkpoint");
      cmd.add_option("--seed", opt->seed, "seed")->capture_default_str();
      cmd.add_flag("--skip-bad", opt->skip_bad,
                   "skip unreadable images and malformed lines (counted, reported)");
      cmd.add_option("--image-size", opt->image_size, "image side (0: 64)");
      cmd.add_flag("--hflip", opt->hflip,
                   "random horizontal flips (not for text that says left/right)");
      cmd.add_option("--log-every", opt->log_every, "steps between progress lines")
          ->capture_default_str();
      cmd.add_option("--val-every", opt->val_every, "steps between validations (0: each epoch)");
      cmd.add_option("--val-limit", opt->val_limit, "validation samples at most")
          ->capture_default_str();
      cmd.add_option("--checkpoint-every", opt->checkpoint_every,
                     "steps between checkpoints (0: at each validation)");
      cmd.add_option("--workers", opt->workers, "data-loader threads")->capture_default_str();
      return [opt] { return run_train(*opt); };
    });

}  // namespace iris::tools
