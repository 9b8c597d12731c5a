#include "nn/checkpoint.h"

#include <set>
#include <sstream>

#include "autograd/ops.h"

namespace iris::nn {
namespace {

constexpr const char* kTrainingFormat = "iris-training-checkpoint/1";
constexpr size_t kListedProblems = 8;  // per kind, in an error message

struct LoadPlan {
  LoadReport report;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (module tensor, file tensor)
};

std::string geometry(const Tensor& t) { return dtype_name(t.dtype()) + shape_str(t.shape()); }

LoadPlan plan_load(const Module& module, const std::map<std::string, Tensor>& tensors,
                   const std::string& prefix) {
  LoadPlan plan;
  std::set<std::string> wanted;
  for (const auto& [name, dst] : module.state_dict()) {
    wanted.insert(name);
    auto it = tensors.find(prefix + name);
    if (it == tensors.end()) {
      plan.report.missing.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    if (src.shape() != dst.shape() || src.dtype() != dst.dtype()) {
      plan.report.mismatched.push_back(name + ": " + geometry(src) + " in the file, " +
                                       geometry(dst) + " in the module");
      continue;
    }
    plan.report.loaded.push_back(name);
    plan.copies.emplace_back(dst, src);
  }
  for (const auto& [key, t] : tensors)
    if (key.rfind(prefix, 0) == 0 && !wanted.count(key.substr(prefix.size())))
      plan.report.unexpected.push_back(key.substr(prefix.size()));
  return plan;
}

void require_complete(const LoadReport& r, const std::string& source) {
  if (r.complete()) return;
  IRIS_FAIL("load_state_dict: ", source, ": ", r.str());
}

void apply(const LoadPlan& plan) {
  NoGradGuard no_grad;
  for (const auto& [dst, src] : plan.copies) copy_(dst, src.to(dst.device()));
}

std::string meta(const Safetensors& f, const std::string& key) {
  auto it = f.metadata.find(key);
  IRIS_CHECK(it != f.metadata.end(), f.path, ": training checkpoint has no metadata '", key, "'");
  return it->second;
}

uint64_t meta_u64(const Safetensors& f, const std::string& key) {
  const std::string v = meta(f, key);
  try {
    size_t used = 0;
    const uint64_t n = std::stoull(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  IRIS_FAIL(f.path, ": metadata '", key, "' = '", v, "' is not an unsigned integer");
}

}  // namespace

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << names.size() << " " << what << " (";
    for (size_t i = 0; i < names.size() && i < kListedProblems; ++i)
      os << (i ? ", " : "") << "'" << names[i] << "'";
    if (names.size() > kListedProblems) os << ", ...";
    os << "); ";
  };
  os << loaded.size() << " loaded; ";
  list("missing tensors", missing);
  list("unexpected tensors", unexpected);
  list("mismatched tensors", mismatched);
  std::string s = os.str();
  return s.substr(0, s.size() - 2);
}

void save_state_dict(const Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

LoadReport load_state_dict(Module& module, const std::string& path, bool strict) {
  const Safetensors file = load_safetensors(path);
  return load_state_dict(module, file.tensors, strict, "", path);
}

LoadReport load_state_dict(Module& module, const std::map<std::string, Tensor>& tensors,
                           bool strict, const std::string& prefix, const std::string& source) {
  LoadPlan plan = plan_load(module, tensors, prefix);
  if (strict) require_complete(plan.report, source);
  apply(plan);
  return plan.report;
}

void save_training_checkpoint(const std::string& path, const Module& model,
                              const Optimizer& optimizer, const LrSchedule* schedule,
                              const Generator* rng, const TrainingState& state) {
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back("model." + name, t);
  for (const auto& [name, t] : optimizer.state_dict()) tensors.emplace_back("optim." + name, t);
  std::map<std::string, std::string> md;
  md["format"] = kTrainingFormat;
  md["step"] = std::to_string(state.step);
  md["optimizer"] = optimizer.kind();
  const Generator& g = rng ? *rng : default_generator();
  md["rng.seed"] = std::to_string(g.seed());
  md["rng.offset"] = std::to_string(g.offset());
  if (schedule) {
    md["schedule"] = schedule->kind();
    md["schedule.last_step"] = std::to_string(schedule->last_step());
    for (const auto& [k, v] : schedule->config()) md["schedule.config." + k] = v;
  }
  for (const auto& [k, v] : state.metadata) md["user." + k] = v;
  save_safetensors(path, tensors, md);
}

TrainingState load_training_checkpoint(const std::string& path, Module& model, Optimizer& optimizer,
                                       LrSchedule* schedule, Generator* rng) {
  const Safetensors file = load_safetensors(path);
  IRIS_CHECK(file.metadata.count("format") && file.metadata.at("format") == kTrainingFormat, path,
             ": not an iris training checkpoint (metadata 'format' should be '", kTrainingFormat,
             "')");
  IRIS_CHECK(meta(file, "optimizer") == optimizer.kind(), path, ": the checkpoint holds ",
             meta(file, "optimizer"), " state, the optimizer is ", optimizer.kind());
  int64_t schedule_step = 0;
  if (schedule) {
    IRIS_CHECK(meta(file, "schedule") == schedule->kind(), path, ": the checkpoint's schedule is ",
               meta(file, "schedule"), ", the given one is ", schedule->kind());
    for (const auto& [k, v] : schedule->config())
      IRIS_CHECK(meta(file, "schedule.config." + k) == v, path, ": schedule ", k, " is ",
                 meta(file, "schedule.config." + k), " in the checkpoint, ", v,
                 " in the given schedule");
    schedule_step = static_cast<int64_t>(meta_u64(file, "schedule.last_step"));
  }
  const uint64_t seed = meta_u64(file, "rng.seed"), offset = meta_u64(file, "rng.offset");
  TrainingState state;
  state.step = static_cast<int64_t>(meta_u64(file, "step"));

  std::map<std::string, Tensor> optim;
  for (const auto& [key, t] : file.tensors) {
    if (key.rfind("optim.", 0) == 0)
      optim.emplace(key.substr(6), t);
    else
      IRIS_CHECK(key.rfind("model.", 0) == 0, path, ": unexpected tensor '", key,
                 "' (neither model. nor optim.)");
  }
  // Everything is checked before anything changes.
  const LoadPlan plan = plan_load(model, file.tensors, "model.");
  require_complete(plan.report, path + " (model.)");
  try {
    optimizer.load_state_dict(optim);
  } catch (const Error& e) {
    IRIS_FAIL(path, " (optim.): ", e.what());
  }
  apply(plan);
  if (schedule) schedule->set_last_step(schedule_step);
  (rng ? *rng : default_generator()).set_state(seed, offset);
  for (const auto& [k, v] : file.metadata)
    if (k.rfind("user.", 0) == 0) state.metadata[k.substr(5)] = v;
  return state;
}

}  // namespace iris::nn
