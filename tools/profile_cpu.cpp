// The PyTorch baseline: bench/torch_profile.py runs as one subprocess over every case whose
// inputs iris wrote (dir/<i>.in.safetensors), writes its outputs (dir/<i>.torch.safetensors)
// and prints one JSON line per case.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/json_lite.h"
#include "nn/safetensors.h"
#include "tools/profile.h"

namespace iris::tools {
namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

std::string tail_of_file(const std::string& path, size_t max_chars) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
  for (char& ch : s)
    if (ch == '\n') ch = ' ';
  return s;
}

}  // namespace

std::string find_torch_profile_script() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates = {fs::current_path() / "bench" / "torch_profile.py"};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
      candidates.push_back(p / "bench" / "torch_profile.py");
  for (const fs::path& c : candidates)
    if (fs::exists(c, ec)) return c.string();
  return "";
}

std::map<size_t, BaselineResult> run_torch_baseline(const std::vector<ProfileCase>& cases,
                                                    const std::vector<size_t>& indices,
                                                    const std::string& dir,
                                                    const TorchBaselineOptions& opt) {
  std::map<size_t, BaselineResult> results;
  auto fail_all = [&](const std::string& why) {
    for (size_t i : indices) results[i] = {"n/a (torch)", -1, {}, why};
    return results;
  };
  const std::string script = opt.script.empty() ? find_torch_profile_script() : opt.script;
  if (script.empty()) return fail_all("bench/torch_profile.py not found");

  const std::string list = dir + "/cases.jsonl";
  {
    std::ofstream out(list);
    for (size_t i : indices)
      out << "{\"index\": " << i << ", \"spec\": " << cases[i].spec
          << ", \"in\": " << json::quote(dir + "/" + std::to_string(i) + ".in.safetensors")
          << ", \"out\": " << json::quote(dir + "/" + std::to_string(i) + ".torch.safetensors")
          << "}\n";
  }
  std::string cmd = "env";
  for (const auto& [k, v] : opt.env) cmd += " " + shell_quote(k + "=" + v);
  if (opt.threads > 0) cmd += " OMP_NUM_THREADS=" + std::to_string(opt.threads);
  cmd += " " + shell_quote(opt.python) + " " + shell_quote(script) + " --cases " +
         shell_quote(list) + " --device " + shell_quote(opt.device);
  if (opt.threads > 0) cmd += " --threads " + std::to_string(opt.threads);
  if (opt.quick) cmd += " --quick";
  const std::string err_file = dir + "/torch_stderr.txt";
  cmd += " 2>" + shell_quote(err_file);

  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return fail_all("cannot start " + opt.python);
  std::string line;
  std::array<char, 4096> buf{};
  std::string global_error;
  while (fgets(buf.data(), int(buf.size()), pipe)) {
    line += buf.data();
    if (line.empty() || line.back() != '\n') continue;
    json::Value v;
    try {
      v = json::parse(line, "bench/torch_profile.py output");
    } catch (const Error&) {
      line.clear();
      continue;  // not one of ours (a library's chatter on stdout)
    }
    line.clear();
    const json::Value* index = v.find("index");
    const json::Value* error = v.find("error");
    if (!index || !index->is_integer || index->integer < 0) {
      if (error) global_error = error->str;
      continue;
    }
    BaselineResult r;
    const json::Value* name = v.find("baseline");
    r.name = name ? name->str : "torch";
    if (error) {
      r.error = error->str;
    } else if (const json::Value* ms = v.find("ms")) {
      r.ms = ms->num;
      const Safetensors out =
          load_safetensors(dir + "/" + std::to_string(index->integer) + ".torch.safetensors");
      for (const auto& [n, t] : out.tensors) r.outputs[n] = host_floats(t);
    }
    results[size_t(index->integer)] = std::move(r);
  }
  const int status = pclose(pipe);
  for (size_t i : indices) {
    if (results.count(i)) continue;
    std::string why = global_error;
    if (why.empty())
      why = opt.python + " " + script + " gave no result (exit status " +
            std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : status) +
            "): " + tail_of_file(err_file, 300);
    results[i] = {"n/a (torch)", -1, {}, why};
  }
  return results;
}

}  // namespace iris::tools
