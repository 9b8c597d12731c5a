// The profile harness: times each case's iris call, runs its baseline, compares outputs, and
// reports time, throughput against the measured limits and the largest difference.
#include "tools/profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/runtime.h"
#include "nn/json_lite.h"
#include "nn/safetensors.h"
#include "tools/profile_limits.h"

namespace iris::tools {

double time_median_ms(const std::function<void()>& fn, Device, const TimingPolicy& policy) {
  for (int i = 0; i < policy.warmup; ++i) fn();
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  while (int(ms.size()) < policy.max_runs &&
         (int(ms.size()) < policy.min_runs || limits::seconds_since(start) < policy.min_seconds)) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(limits::seconds_since(t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::vector<float> host_floats(const Tensor& t) { return t.to_vector<float>(); }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return INFINITY;  // a NaN on either side is the worst difference
    worst = std::max(worst, d);
  }
  return worst;
}

MachineLimits measure_cpu_limits() {
  MachineLimits m;
  m.peak_gflops = limits::measure_fma_peak_gflops(3);
  m.bandwidth_gbs = limits::measure_memory_bandwidth_gbs();
  std::ostringstream os;
  os << "measured: " << cpu::gemm_isa() << " FMA chains on " << num_threads()
     << " threads, STREAM scale over 2 x 256 MiB";
  m.source = os.str();
  return m;
}

namespace {

std::filesystem::path make_work_dir(const std::string& requested) {
  if (!requested.empty()) {
    std::filesystem::create_directories(requested);
    return requested;
  }
  std::string templ = (std::filesystem::temp_directory_path() / "iris-profile-XXXXXX").string();
  IRIS_CHECK(mkdtemp(templ.data()) != nullptr, "iris profile: cannot create a temporary folder ",
             templ);
  return templ;
}

std::string file_for(const std::filesystem::path& dir, size_t index, const char* what) {
  return (dir / (std::to_string(index) + "." + what + ".safetensors")).string();
}

// The largest difference over the outputs both sides have (padding rows zeroed).
using PaddingMask = std::function<void(const std::string&, std::vector<float>&)>;

double compare_outputs(const PaddingMask& mask, const NamedTensors& iris_outputs,
                       const std::map<std::string, std::vector<float>>& other) {
  double worst = 0;
  for (const auto& [name, t] : iris_outputs) {
    auto it = other.find(name);
    if (it == other.end()) return INFINITY;
    std::vector<float> mine = host_floats(t), theirs = it->second;
    if (mask) {
      mask(name, mine);
      mask(name, theirs);
    }
    worst = std::max(worst, max_abs_diff(mine, theirs));
  }
  return worst;
}

std::map<std::string, std::vector<float>> host_outputs(const NamedTensors& outputs) {
  std::map<std::string, std::vector<float>> m;
  for (const auto& [name, t] : outputs) m[name] = host_floats(t);
  return m;
}

void finish_row(ProfileRow& row, const ProfileCase& c, const MachineLimits& lim) {
  row.compute_bound = c.flops > 0;
  if (row.iris_ms <= 0) return;
  const double per_s = 1e3 / row.iris_ms;
  row.rate = row.compute_bound ? c.flops * per_s * 1e-12 : c.bytes * per_s * 1e-9;
  const double peak = row.compute_bound ? lim.peak_gflops * 1e-3 : lim.bandwidth_gbs;
  if (peak > 0) row.pct_peak = row.rate / peak * 100.0;
  if (row.baseline_ms > 0) row.ratio = row.iris_ms / row.baseline_ms;
}

// Whether the CUDA device exists here, and whether it is a real GPU (else the emulator).
struct CudaProbe {
  bool available = false, real = false;
  std::string why;
};

CudaProbe probe_cuda() {
  CudaProbe p;
  if (!has_allocator(DeviceType::CUDA)) {
    p.why = "no GPU (iris built without CUDA)";
    return p;
  }
  try {
    const Tensor t = Tensor::empty({1}, DType::f32, Device::cuda());
    p.available = true;
    p.real = is_real_gpu_tensor(t);
  } catch (const Error&) {
    p.why = "no GPU";
  }
  return p;
}

}  // namespace

ProfileReport run_profile(const ProfileOptions& opt) {
  ProfileReport report;
  const Device device = parse_device(opt.device);
  std::vector<ProfileCase> cases = profile_cases(opt.ops, opt.size);
  // The CPU kernels compute float32/float64: the 16-bit cases are rows for a GPU.
  if (device.is_cpu()) std::erase_if(cases, [](const ProfileCase& c) { return c.dtype != "f32"; });
  CudaProbe cuda;
  if (device.is_cpu()) {
    report.limits = measure_cpu_limits();
    report.device_description =
        std::string("cpu (") + cpu::gemm_isa() + ", " + std::to_string(num_threads()) + " threads)";
  } else {
    cuda = probe_cuda();
    if (!cuda.available) {
      report.device_description = cuda.why;
    } else if (cuda.real) {
      report.device_description = cuda::device_description(device.index);
      if (auto lim = gpu_limits(device.index)) report.limits = *lim;
    } else {
      report.device_description = "cuda (emulated)";
      report.limits.source = "emulated device: no hardware limits";
    }
  }

  const std::filesystem::path dir = make_work_dir(opt.work_dir);
  // Torch runs after iris, on the inputs iris wrote: CPU always, a real GPU for the ops
  // without a vendor baseline.
  const bool torch_wanted =
      !opt.torch.python.empty() && opt.torch.python != "none" && (device.is_cpu() || cuda.real);
  std::vector<size_t> torch_indices;
  std::map<size_t, PaddingMask> torch_masks;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ProfileCase& c = cases[i];
    ProfileRow row;
    row.op = c.op;
    row.shape = c.shape;
    row.dtype = c.dtype;
    row.device = device.is_cpu() ? "cpu" : "cuda";
    if (device.is_cuda() && !cuda.available) {
      row.baseline = "no GPU";
      row.note = cuda.why;
      report.rows.push_back(row);
      if (opt.on_row) opt.on_row(row);
      continue;
    }
    try {
      const PreparedCase prepared = c.prepare(device);
      row.iris_ms = cuda.real ? gpu_time_median_ms(prepared.run, opt.timing)
                              : time_median_ms(prepared.run, device, opt.timing);
      if (device.is_cuda() && opt.check_against_cpu) {
        const PreparedCase on_cpu = c.prepare(Device::cpu());
        on_cpu.run();
        row.cpu_err =
            compare_outputs(prepared.mask_padding, prepared.outputs, host_outputs(on_cpu.outputs));
      }
      std::optional<BaselineResult> vendor;
      if (cuda.real) vendor = vendor_baseline(c, prepared, opt.timing);
      if (vendor) {
        row.baseline = vendor->name;
        if (vendor->error.empty()) {
          row.baseline_ms = vendor->ms;
          row.max_err = compare_outputs(prepared.mask_padding, prepared.outputs, vendor->outputs);
        } else {
          row.note = vendor->error;
        }
      } else if (torch_wanted) {
        save_safetensors(file_for(dir, i, "in"), prepared.inputs);
        save_safetensors(file_for(dir, i, "iris"), prepared.outputs);
        torch_indices.push_back(i);
        torch_masks[i] = prepared.mask_padding;
      } else {
        row.baseline = device.is_cpu() ? "n/a (no --torch)"
                       : cuda.real     ? "n/a (no torch)"
                                       : "n/a (emulated device)";
      }
    } catch (const Error& e) {
      row.iris_ms = -1;
      row.note = e.what();
    }
    report.rows.push_back(row);
    if (opt.on_row) opt.on_row(row);
  }

  if (!torch_indices.empty()) {
    TorchBaselineOptions topt = opt.torch;
    topt.device = device.is_cpu() ? "cpu" : "cuda";
    const auto results = run_torch_baseline(cases, torch_indices, dir.string(), topt);
    for (size_t i : torch_indices) {
      ProfileRow& row = report.rows[i];
      const BaselineResult& b = results.at(i);
      row.baseline = b.name;
      if (!b.error.empty()) {
        row.note = b.error;
        continue;
      }
      row.baseline_ms = b.ms;
      const Safetensors mine = load_safetensors(file_for(dir, i, "iris"));
      NamedTensors outputs(mine.tensors.begin(), mine.tensors.end());
      row.max_err = compare_outputs(torch_masks[i], outputs, b.outputs);
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) finish_row(report.rows[i], cases[i], report.limits);
  if (opt.work_dir.empty()) std::filesystem::remove_all(dir);
  return report;
}

// ---- output ----

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string or_dash(double v, const char* f) { return v < 0 ? "-" : fmt(f, v); }

std::string json_num(double v, const char* f) {
  return v < 0 || !std::isfinite(v) ? "null" : fmt(f, v);
}

struct Cells {
  std::vector<std::string> c;
};

Cells row_cells(const ProfileRow& r) {
  const std::string rate =
      r.rate < 0 ? "-" : (r.compute_bound ? fmt("%.3f TF/s", r.rate) : fmt("%.1f GB/s", r.rate));
  std::string baseline = r.baseline.empty() ? "-" : r.baseline;
  std::string iris_ms = or_dash(r.iris_ms, "%.3f");
  if (r.iris_ms < 0 && !r.note.empty() && r.note != "no GPU") iris_ms = "error";
  return {{r.op, r.shape, r.dtype, iris_ms, baseline, or_dash(r.baseline_ms, "%.3f"),
           or_dash(r.ratio, "%.2f"), rate, or_dash(r.pct_peak, "%.0f%%"),
           r.max_err < 0 ? "-" : fmt("%.1e", r.max_err)}};
}

const std::vector<std::string> kHeader = {"op",          "shape", "dtype", "iris ms", "baseline",
                                          "baseline ms", "ratio", "rate",  "% peak",  "max err"};

std::string limits_line(const ProfileReport& r) {
  std::ostringstream os;
  os << "device: " << r.device_description;
  if (r.limits.peak_gflops > 0)
    os << "; peak " << fmt("%.1f", r.limits.peak_gflops) << " GFLOP/s fp32, bandwidth "
       << fmt("%.1f", r.limits.bandwidth_gbs) << " GB/s";
  if (!r.limits.source.empty()) os << " (" << r.limits.source << ")";
  return os.str();
}

std::string notes_block(const ProfileReport& r, const char* bullet) {
  std::string s;
  for (const ProfileRow& row : r.rows)
    if (!row.note.empty() && row.note != "no GPU")
      s += std::string(bullet) + row.op + " " + row.shape + ": " + row.note + "\n";
  return s;
}

}  // namespace

std::string format_profile_table(const ProfileReport& r) {
  std::vector<Cells> rows{{kHeader}};
  for (const ProfileRow& row : r.rows) rows.push_back(row_cells(row));
  std::vector<size_t> width(kHeader.size(), 0);
  for (const Cells& c : rows)
    for (size_t j = 0; j < c.c.size(); ++j) width[j] = std::max(width[j], c.c[j].size());
  std::string out = limits_line(r) + "\nratio = iris ms / baseline ms (> 1: iris slower)\n";
  for (const Cells& c : rows) {
    std::string line;
    for (size_t j = 0; j < c.c.size(); ++j) {
      const bool left = j <= 2 || j == 4;
      const std::string pad(width[j] - c.c[j].size(), ' ');
      line += (j ? "  " : "") + (left ? c.c[j] + pad : pad + c.c[j]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out + notes_block(r, "note: ");
}

std::string profile_row_json(const ProfileRow& r) {
  std::ostringstream os;
  os << "{\"op\": " << json::quote(r.op) << ", \"shape\": " << json::quote(r.shape)
     << ", \"dtype\": " << json::quote(r.dtype) << ", \"device\": " << json::quote(r.device)
     << ", \"iris_ms\": " << json_num(r.iris_ms, "%.4f")
     << ", \"baseline\": " << json::quote(r.baseline.empty() ? "n/a" : r.baseline)
     << ", \"baseline_ms\": " << json_num(r.baseline_ms, "%.4f")
     << ", \"ratio\": " << json_num(r.ratio, "%.3f") << ", \""
     << (r.compute_bound ? "tflops" : "gbps")
     << "\": " << json_num(r.rate, r.compute_bound ? "%.4f" : "%.2f")
     << ", \"pct_peak\": " << json_num(r.pct_peak, "%.1f") << ", \"max_err\": "
     << (r.max_err < 0 || !std::isfinite(r.max_err) ? "null" : fmt("%.3g", r.max_err)) << "}";
  return os.str();
}

std::string format_profile_markdown(const ProfileReport& r) {
  std::string out = "# iris profile\n\n" + limits_line(r) +
                    "\n\nratio = iris ms / baseline ms (> 1: iris slower); rate is TF/s for "
                    "compute-bound ops, GB/s for memory-bound ones.\n\n|";
  for (const std::string& h : kHeader) out += " " + h + " |";
  out += "\n|";
  for (size_t j = 0; j < kHeader.size(); ++j) out += (j <= 2 || j == 4) ? "---|" : "---:|";
  out += "\n";
  for (const ProfileRow& row : r.rows) {
    out += "|";
    for (const std::string& cell : row_cells(row).c) out += " " + cell + " |";
    out += "\n";
  }
  const std::string notes = notes_block(r, "- ");
  return notes.empty() ? out : out + "\nNotes:\n\n" + notes;
}

}  // namespace iris::tools
