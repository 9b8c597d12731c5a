// The iris command line: every subcommand registers itself (tools/command.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "tools/command.h"

int main(int argc, char** argv) {
  CLI::App app{"iris: a tensor and autograd engine for vision-and-language models"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: IRIS_NUM_THREADS or all cores)");

  auto commands = iris::tools::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (const auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runners.emplace_back(sub, c.setup(*sub));
  }

  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) iris::set_num_threads(threads);
    for (auto& [sub, run] : runners)
      if (*sub) return run();
  } catch (const iris::Error& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
