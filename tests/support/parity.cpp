#include "tests/support/parity.h"

#include <unistd.h>

#include <fstream>
#include <memory>

namespace iris::testing {

ParityCase::ParityCase(std::string name, Safetensors file)
    : name_(std::move(name)), file_(std::move(file)) {}

std::vector<std::string> ParityCase::grad_names() const {
  std::vector<std::string> out;
  for (const std::string& n : file_.names)
    if (n.rfind("grad.", 0) == 0) out.push_back(n.substr(5));
  return out;
}

bool ParityCase::has_in(const std::string& name) const { return file_.has("in." + name); }

Tensor ParityCase::in(const std::string& name) const {
  auto it = leaves_.find(name);
  if (it != leaves_.end()) return it->second;
  IRIS_CHECK(has_in(name), "parity case ", name_, ": no input '", name, "'");
  Tensor t = file_.at("in." + name).clone();  // own memory, not the mapping
  if (file_.has("grad." + name)) t.set_requires_grad(true);
  leaves_[name] = t;
  return t;
}

std::string ParityCase::attr(const std::string& key) const {
  auto it = file_.metadata.find(key);
  IRIS_CHECK(it != file_.metadata.end(), "parity case ", name_, ": no attribute '", key, "'");
  return it->second;
}

std::vector<const ParityCase*> parity_cases(const std::string& family, const std::string& prefix) {
  static std::map<std::string, std::vector<std::unique_ptr<ParityCase>>> cache;
  auto it = cache.find(family);
  if (it == cache.end()) {
    const std::string dir = make_temp_dir("iris-parity");
    const std::string script = source_dir() + "/tests/parity/torch_parity.py";
    const std::string cases = source_dir() + "/tests/parity/cases_" + family + ".py";
    const int rc = run_python(script, {cases, dir});
    IRIS_CHECK(rc == 0, "parity: ", torch_python(), " ", script, " ", cases, " failed (exit ", rc,
               ")");
    std::vector<std::unique_ptr<ParityCase>> loaded;
    std::ifstream index(dir + "/index.txt");
    std::string name;
    while (std::getline(index, name)) {
      if (name.empty()) continue;
      const std::string path = dir + "/" + name + ".safetensors";
      loaded.push_back(std::make_unique<ParityCase>(name, load_safetensors(path)));
      ::unlink(path.c_str());  // the mapping stays valid after unlink
    }
    ::unlink((dir + "/index.txt").c_str());
    ::rmdir(dir.c_str());
    IRIS_CHECK(!loaded.empty(), "parity: ", cases, " produced no case");
    it = cache.emplace(family, std::move(loaded)).first;
  }
  std::vector<const ParityCase*> out;
  for (const auto& c : it->second)
    if (c->name().rfind(prefix, 0) == 0) out.push_back(c.get());
  IRIS_CHECK(!out.empty(), "parity: no case of family '", family, "' starts with '", prefix, "'");
  return out;
}

::testing::AssertionResult check_parity(const ParityCase& c, const ParityFn& fn, double rtol,
                                        double atol) {
  c.reset_inputs();
  std::vector<Tensor> outs;
  try {
    outs = fn(c);
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << "iris threw: " << e.what();
  }
  if (static_cast<int>(outs.size()) != c.outputs())
    return ::testing::AssertionFailure() << outs.size() << " outputs, torch has " << c.outputs();
  Tensor total;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string key = "out." + std::to_string(i);
    Tensor expect = c.expected(key);
    Tensor got = outs[i].to(Device::cpu());
    if (got.dtype() != expect.dtype() && is_floating(got.dtype()) == is_floating(expect.dtype()))
      got = got.to(expect.dtype());
    auto r = all_close(got, expect, rtol, atol);
    if (!r) return r << " (" << key << ")";
    const std::string pkey = "proj." + std::to_string(i);
    if (c.has(pkey) && outs[i].requires_grad()) {
      Tensor term = sum(mul(outs[i], c.expected(pkey).to(outs[i].dtype())));
      total = total.defined() ? add(total, term) : term;
    }
  }
  if (!total.defined()) return ::testing::AssertionSuccess();
  try {
    total.backward();
  } catch (const Error& e) {
    return ::testing::AssertionFailure() << "backward threw: " << e.what();
  }
  // Every input with a torch gradient must have a matching iris gradient.
  for (const std::string& name : c.grad_names()) {
    const Tensor leaf = c.in(name);
    const Tensor g = leaf.grad();
    if (!g.defined())
      return ::testing::AssertionFailure() << "no iris gradient for input '" << name << "'";
    auto r = all_close(g.to(Device::cpu()).to(DType::f64),
                       c.expected("grad." + name).to(DType::f64), rtol, atol);
    if (!r) return r << " (grad." << name << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace iris::testing
