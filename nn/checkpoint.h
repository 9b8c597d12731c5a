#pragma once
// Checkpoints as safetensors files, with the names of Module::state_dict() (which are
// PyTorch's, so files move between iris and torch both ways).
//
// Loading is strict by default: a missing tensor, an unexpected tensor, a wrong shape
// or a wrong dtype throws an iris::Error naming the tensor and the file, before any
// tensor is changed. A non-strict load copies what matches and reports the rest.
// Truncated or corrupt files fail in load_safetensors, naming the file (and the
// tensor whose bytes are missing).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"

namespace iris::nn {

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> mismatched;  // "name: file float64[3] vs module float32[3]"
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

void save_state_dict(const Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});
LoadReport load_state_dict(Module& module, const std::string& path, bool strict = true);
// From tensors already loaded; only names starting with `prefix` are considered (and the
// prefix is removed before matching). `source` names the origin in messages.
LoadReport load_state_dict(Module& module, const std::map<std::string, Tensor>& tensors,
                           bool strict = true, const std::string& prefix = "",
                           const std::string& source = "state dict");

// Everything a run needs to continue bit for bit on CPU: model tensors ("model.<name>"),
// optimizer state ("optim.<name>"), and in the metadata the step, the schedule (kind,
// config, last step), the generator (seed, offset) and the caller's own entries.
struct TrainingState {
  int64_t step = 0;
  std::map<std::string, std::string> metadata;  // the caller's, stored as "user.<key>"
};

// schedule may be null; rng null means the default generator.
void save_training_checkpoint(const std::string& path, const Module& model,
                              const Optimizer& optimizer, const LrSchedule* schedule,
                              const Generator* rng, const TrainingState& state);
// Restores into an existing model/optimizer/schedule of the same configuration (strict).
TrainingState load_training_checkpoint(const std::string& path, Module& model, Optimizer& optimizer,
                                       LrSchedule* schedule, Generator* rng);

}  // namespace iris::nn
