// `iris profile`: the command line over tools/profile.h.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/parallel.h"
#include "kernels/cpu/gemm.h"
#include "tools/command.h"
#include "tools/profile.h"

namespace iris::tools {
namespace {

struct ProfileCliOptions {
  std::string device = "cpu";
  std::vector<std::string> ops;
  bool quick = false, json = false;
  std::string out;
  int threads = 0;
  std::string torch = "/usr/bin/python3";
  std::vector<std::string> torch_env;
};

std::vector<std::string> split_commas(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      const size_t comma = std::min(item.find(',', start), item.size());
      if (comma > start) out.push_back(item.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

int run_profile_cli(const ProfileCliOptions& cli) {
  if (cli.threads > 0) set_num_threads(cli.threads);
  ProfileOptions opt;
  opt.device = cli.device;
  opt.ops = split_commas(cli.ops);
  opt.size = cli.quick ? CaseSize::quick : CaseSize::full;
  if (cli.quick) opt.timing = {1, 3, 5, 0.05};
  opt.torch.python = cli.torch;
  opt.torch.threads = num_threads();
  opt.torch.quick = cli.quick;
  // OpenBLAS may pick a generic kernel on these CPUs; the baseline runs at its best (its
  // process only; bench/README.md).
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && std::string(cpu::gemm_isa()) == "avx512")
    opt.torch.env["OPENBLAS_CORETYPE"] = "SkylakeX";
  // libgomp's default spinning wait turns a busy machine's time slices into 100x slower
  // medians; iris's pool sleeps the same way a passive OpenMP wait does.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) opt.torch.env["OMP_WAIT_POLICY"] = "PASSIVE";
  for (const std::string& kv : cli.torch_env) {
    const size_t eq = kv.find('=');
    IRIS_CHECK(eq != std::string::npos && eq > 0,
               "iris profile: --torch-env wants KEY=VALUE, got '", kv, "'");
    opt.torch.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!cli.out.empty()) {
    std::filesystem::create_directories(cli.out);
    opt.work_dir = (std::filesystem::path(cli.out) / "exchange").string();
  }
  opt.on_row = [](const ProfileRow& r) {
    std::fprintf(stderr, "  %-18s %-44s %s\n", r.op.c_str(), r.shape.c_str(),
                 r.iris_ms >= 0 ? (std::to_string(r.iris_ms) + " ms").c_str() : r.note.c_str());
  };
  const ProfileReport report = run_profile(opt);
  std::string json_lines;
  for (const ProfileRow& r : report.rows) json_lines += profile_row_json(r) + "\n";
  std::fputs(cli.json ? json_lines.c_str() : format_profile_table(report).c_str(), stdout);
  if (!cli.out.empty()) {
    std::filesystem::remove_all(opt.work_dir);
    std::ofstream(std::filesystem::path(cli.out) / "profile.md") << format_profile_markdown(report);
    std::ofstream(std::filesystem::path(cli.out) / "profile.jsonl") << json_lines;
  }
  return 0;
}

}  // namespace

IRIS_COMMAND(profile, "time every kernel against a baseline and the machine's measured limits",
             [](CLI::App& cmd) {
               auto opt = std::make_shared<ProfileCliOptions>();
               cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
               cmd.add_option("--ops", opt->ops,
                              "op families, comma-separated: conv, attention, layer_norm, "
                              "softmax, cross_entropy, gemm (default: all)");
               cmd.add_flag("--quick", opt->quick, "small shapes, few runs (seconds)");
               cmd.add_flag("--json", opt->json, "one JSON object per line instead of the table");
               cmd.add_option("--out", opt->out, "also write DIR/profile.md and profile.jsonl");
               cmd.add_option("--threads", opt->threads, "CPU threads (iris and the baseline)");
               cmd.add_option("--torch", opt->torch,
                              "python with torch for the baseline ('none': no baseline)")
                   ->capture_default_str();
               cmd.add_option("--torch-env", opt->torch_env,
                              "KEY=VALUE for the baseline process only (repeatable)");
               return [opt] { return run_profile_cli(*opt); };
             });

}  // namespace iris::tools
