#pragma once
// `iris demo`: the README's main job, end to end on built-in data and the CPU: synthesise a
// captioning set (iris synth), train the vit-cap captioner for a few minutes (iris train's
// library, live progress), evaluate it on the test split (BLEU-1..4, CIDEr-D, ROUGE-L) and
// write OUT/report.html: held-out images with generated and reference captions, a
// cross-attention heatmap per generated word, and the loss and BLEU-4 curves.
#include <cstdint>
#include <cstdio>
#include <string>

#include "models/trainer.h"

namespace iris::tools {

struct DemoOptions {
  std::string out = "iris-demo";  // OUT/data (the set), OUT/run (the run), OUT/report.html
  int64_t n = 0;                  // scenes to synthesise; 0: 6000 (quick: 96)
  int64_t steps = 0;              // training steps; 0: as many as `minutes` allow
  double minutes = 3.5;           // training time when steps is 0 (measured, then planned)
  uint64_t seed = 0;
  int threads = 0;         // CPU threads; 0: leave the current setting
  int64_t samples = 12;    // held-out images shown in the report
  int64_t eval_limit = 0;  // test images scored; 0: the whole test split
  bool quick = false;      // a tiny set, model and run: the whole pipeline in seconds
};

struct DemoResult {
  std::string report, run_dir, data_dir;
  int64_t steps = 0;
  double train_seconds = 0;
  models::EvalResult test;
};

// Runs the demo, printing progress to `log`.
DemoResult run_demo(const DemoOptions& options, std::FILE* log = stdout);

}  // namespace iris::tools
