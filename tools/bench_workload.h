#pragma once
// `iris bench workload`: the end-to-end workloads of ../shared/workloads/torch_ref.py `time`,
// run with the iris models the same way (shapes, optimizer, median of steps after warm-up).
#include <cstdint>
#include <string>

namespace iris::tools {

struct WorkloadOptions {
  std::string workload;  // vit-cap | cnn-rnn | vit-b16
  std::string device = "cpu";
  int steps = 5;
  std::string precision = "fp32";
  // What torch_ref.py fixes, overridable for tests: the batch (0: the workload's, 32 or 8)
  // and the model configuration (JSON overrides of the zoo defaults).
  int64_t batch = 0;
  std::string config = "{}";
};

struct WorkloadResult {
  std::string workload, what;  // what: "train step" | "forward"
  int64_t batch = 0;
  int timed_steps = 0;
  double ms = 0;                 // median per step
  double peak_rss_mb = 0;        // process peak resident set (VmHWM), as side_by_side reads it
  double peak_allocated_mb = 0;  // iris allocator's peak on the device during the steps
  int threads = 0;
  std::string device;
};

WorkloadResult run_workload(const WorkloadOptions& opt);
// One JSON line: workload, what, batch, ms, peak_mem_mb (= peak RSS on CPU, the allocator's
// peak on CUDA), peak_mem_source, alloc_peak_mb, threads, device, steps.
std::string workload_json(const WorkloadResult& r);

}  // namespace iris::tools
