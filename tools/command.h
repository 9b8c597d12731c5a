#pragma once
// Subcommands of the `iris` command line register themselves, one file each:
//
//   // tools/synth.cpp
//   IRIS_COMMAND(synth, "write a synthetic multimodal data set", [](CLI::App& cmd) {
//     auto opt = std::make_shared<SynthCliOptions>();
//     cmd.add_option("--out", opt->out, "output folder")->required();
//     return [opt] { return run_synth(*opt); };  // runs when `iris synth` was chosen
//   });
//
// run_command_line adds every registered command as a CLI11 subcommand, parses, and runs the
// chosen one; main() (tools/iris.cpp) prints an iris::Error it throws and exits with 1.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace iris::tools {

// Adds the command's options to `cmd`, returns what to run (the process exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App& cmd)>;

struct CommandInfo {
  std::string name, help;
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();

// The `iris` command line on `app`: the global options (--threads) and every registered
// command, sorted by name; parses argv (argv[0] is the program) and runs the chosen command,
// returning its exit code. CLI::ParseError (--help included) propagates for the caller's
// app.exit(), and so does whatever the command throws.
int run_command_line(CLI::App& app, int argc, const char* const* argv);

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string help, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace iris::tools

#define IRIS_COMMAND(id, help, setup) \
  static const ::iris::tools::CommandRegistrar iris_command_##id(#id, help, setup)
