// The iris command line: every subcommand registers itself (tools/command.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/error.h"
#include "tools/command.h"

int main(int argc, char** argv) {
  CLI::App app{"iris: a tensor and autograd engine for vision-and-language models"};
  try {
    return iris::tools::run_command_line(app, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const iris::Error& e) {
    std::fprintf(stderr, "iris: error: %s\n", e.what());
    return 1;
  }
}
