#pragma once
// `iris demo`: the smallest end-to-end job on built-in data (until the full
// captioning demo exists): a tiny visual-question-answering model trained on CPU.
#include <cstdint>

namespace iris::tools {

struct DemoOptions {
  int64_t steps = 600;
  int64_t batch = 32;
  double lr = 3e-3;
  uint64_t seed = 0;
  int64_t log_every = 25;
};

// Returns the process exit code.
int run_demo(const DemoOptions& opt);

}  // namespace iris::tools
