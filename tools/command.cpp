#include "tools/command.h"

#include <algorithm>

#include "core/parallel.h"

namespace iris::tools {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;  // filled by static registrars before main()
  return registry;
}

int run_command_line(CLI::App& app, int argc, const char* const* argv) {
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: IRIS_NUM_THREADS or all cores)");
  auto commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (const auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runners.emplace_back(sub, c.setup(*sub));
  }
  app.parse(argc, argv);
  if (threads > 0) set_num_threads(threads);
  for (auto& [sub, run] : runners)
    if (*sub) return run();
  return 0;
}

}  // namespace iris::tools
