#pragma once
// Runs the `iris` command line in-process as main() does (tools::run_command_line), with
// stdout captured; errors propagate, so tests can check what they name.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/command.h"

namespace iris::tools {

struct CommandOutput {
  int code = -1;
  std::string out;  // stdout
};

inline CommandOutput run_iris(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"iris"};
  for (const auto& a : args) argv.push_back(a.c_str());
  CLI::App app{"iris"};
  std::fflush(stdout);
  ::testing::internal::CaptureStdout();
  CommandOutput result;
  try {
    result.code = run_command_line(app, static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    std::fflush(stdout);
    ::testing::internal::GetCapturedStdout();
    throw;
  }
  std::fflush(stdout);
  result.out = ::testing::internal::GetCapturedStdout();
  return result;
}

}  // namespace iris::tools
