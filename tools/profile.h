#pragma once
// `iris profile`: every kernel against a baseline and against the machine's measured limits.
//
//   profile_cases.cpp     the ops and shapes (conv, attention, norms, softmax, cross-entropy,
//                         GEMM), each with its inputs, its iris call and its FLOP/byte count
//   profile.cpp           the harness: timing method, comparison, table / JSON / markdown
//   profile_cpu.cpp       CPU baseline (bench/torch_profile.py as a subprocess)
//   profile_gpu.cpp       GPU baselines (cuDNN, cuBLASLt, CUDA events; IRIS_WITH_CUDA only)
//   profile_command.cpp   the command line
//   profile_limits.h      FMA peak and memory bandwidth (shared with bench/bench_gemm)
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace iris::tools {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One iris call, ready to time: its inputs (what a baseline receives too), the call, and the
// outputs it writes (what is compared).
struct PreparedCase {
  NamedTensors inputs;
  std::function<void()> run;
  NamedTensors outputs;
  // Rows of an output that are padding (per-sample lengths): zeroed before comparing.
  std::function<void(const std::string& name, std::vector<float>& host)> mask_padding;
};

struct ProfileCase {
  std::string op;     // "conv2d_fwd", "attention_bwd", "layer_norm_fwd", "gemm", ...
  std::string shape;  // human-readable: "N8 C64 56x56 K64 3x3 s1 p1"
  std::string dtype = "f32";
  double flops = 0;  // per call; > 0: compute-bound, reported as TFLOP/s
  double bytes = 0;  // per call, when memory-bound (flops == 0): reported as GB/s
  std::string spec;  // JSON object for bench/torch_profile.py: {"op": ..., shape fields}
  std::function<PreparedCase(Device)> prepare;
};

// The ops `iris profile --ops` accepts (families: conv covers fwd/bwd-data/bwd-weight).
const std::vector<std::string>& profile_op_families();
// The cases of the given families ("conv", "attention", ...; empty: all). quick: small shapes
// for a run of seconds; tiny: the smallest shapes of each family (tests, the emulator).
enum class CaseSize { full, quick, tiny };
std::vector<ProfileCase> profile_cases(const std::vector<std::string>& families, CaseSize size);

struct MachineLimits {
  double peak_gflops = 0;    // fp32
  double bandwidth_gbs = 0;  // memory
  std::string source;        // "measured: ..." or "device properties: ..."
};

struct ProfileRow {
  std::string op, shape, dtype, device;
  double iris_ms = -1;   // < 0: not run (note says why)
  std::string baseline;  // "torch 1.13.1 cpu", "cuDNN 9.19", "no GPU", "n/a (...)"
  double baseline_ms = -1;
  double ratio = -1;  // iris_ms / baseline_ms: > 1 means iris is slower
  bool compute_bound = true;
  double rate = -1;  // TFLOP/s (compute_bound) or GB/s
  double pct_peak = -1;
  double max_err = -1;  // max |iris - baseline| over the outputs
  double cpu_err = -1;  // on a CUDA device, when asked: max |iris cuda - iris cpu|
  std::string note;
};

// How one call is timed: `warmup` calls, then calls until `min_seconds` have passed and at
// least `min_runs` (at most `max_runs`) were made; the median is reported.
struct TimingPolicy {
  int warmup = 2;
  int min_runs = 5;
  int max_runs = 50;
  double min_seconds = 0.3;
};

// The median time in ms of fn by a steady clock: the CPU and the emulated device, whose
// launches are synchronous (a real GPU is timed by gpu_time_median_ms).
double time_median_ms(const std::function<void()>& fn, Device device, const TimingPolicy& policy);

// Host copy of a tensor as float (any float dtype, any device).
std::vector<float> host_floats(const Tensor& t);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// A baseline's answer for one case: its time and its outputs (named as iris's).
struct BaselineResult {
  std::string name;  // "torch 1.13.1 cpu", "cuDNN 9.19 (FindConvolution)", ...
  double ms = -1;
  std::map<std::string, std::vector<float>> outputs;
  std::string error;  // why there is no figure
};

// ---- CPU: PyTorch through bench/torch_profile.py ----
struct TorchBaselineOptions {
  std::string python = "/usr/bin/python3";  // "" or "none": no baseline
  std::string script;                       // bench/torch_profile.py (found from the binary)
  std::string device = "cpu";
  int threads = 0;
  bool quick = false;
  std::map<std::string, std::string> env;  // for the subprocess only (OPENBLAS_CORETYPE)
};
// Runs the script once over every case whose inputs were written to dir/<index>.in.safetensors;
// index -> result. When the script or torch is missing, every result's error says so.
std::map<size_t, BaselineResult> run_torch_baseline(const std::vector<ProfileCase>& cases,
                                                    const std::vector<size_t>& indices,
                                                    const std::string& dir,
                                                    const TorchBaselineOptions& opt);
// bench/torch_profile.py next to the source tree this binary was built from, or "" if absent.
std::string find_torch_profile_script();

// ---- GPU (profile_gpu.cpp) ----
// True when `t` lives on a real GPU (not the SIMT emulator); false without IRIS_WITH_CUDA.
bool is_real_gpu_tensor(const Tensor& t);
// The device's figures: fp32 peak and memory bandwidth from its properties (std::nullopt
// without a GPU).
std::optional<MachineLimits> gpu_limits(int device_index);
// A cuDNN / cuBLASLt baseline for the case on a real GPU, on the prepared inputs; nullopt
// when the case has no vendor baseline (the torch GPU script covers it).
std::optional<BaselineResult> vendor_baseline(const ProfileCase& c, const PreparedCase& prepared,
                                              const TimingPolicy& policy);
// CUDA-event timing of fn on the current GPU (ms, median); only for real GPUs.
double gpu_time_median_ms(const std::function<void()>& fn, const TimingPolicy& policy);

// ---- the harness ----
struct ProfileOptions {
  std::string device = "cpu";
  std::vector<std::string> ops;  // families; empty: all
  CaseSize size = CaseSize::full;
  TimingPolicy timing;
  bool check_against_cpu = false;  // CUDA device: also run iris's CPU kernel, fill cpu_err
  TorchBaselineOptions torch;
  std::string work_dir;  // inputs / outputs exchanged with the baseline; "" = a temp dir
  // Called after each case is timed (progress on stderr in the CLI).
  std::function<void(const ProfileRow&)> on_row;
};

struct ProfileReport {
  MachineLimits limits;
  std::vector<ProfileRow> rows;
  std::string device_description;
};

MachineLimits measure_cpu_limits();
ProfileReport run_profile(const ProfileOptions& opt);

// Output: the stdout table, one JSON object per row (the fields of issue 6), markdown.
std::string format_profile_table(const ProfileReport& r);
std::string profile_row_json(const ProfileRow& row);
std::string format_profile_markdown(const ProfileReport& r);

}  // namespace iris::tools
