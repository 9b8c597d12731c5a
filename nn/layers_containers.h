#pragma once
// Sequential and ModuleList: children named "0", "1", ... as in torch.
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace iris::nn {

namespace detail_containers {
// Module `i` of `list` as M; throws naming the container when absent or of another type.
template <class M>
M& typed_at(const char* container, const std::vector<std::shared_ptr<Module>>& list, size_t i) {
  IRIS_CHECK(i < list.size(), container, ": index ", i, " out of range (", list.size(),
             " modules)");
  M* m = dynamic_cast<M*>(list[i].get());
  IRIS_CHECK(m != nullptr, container, ": module ", i, " is a ", list[i]->repr(),
             ", not the type asked for");
  return *m;
}
}  // namespace detail_containers

// Chains single-tensor forwards.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  Sequential& push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;

  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const { return at<Module>(i); }
  template <class M>
  M& at(size_t i) const {
    return detail_containers::typed_at<M>("Sequential", modules_, i);
  }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Holds modules for a model to call as it likes (no forward of its own).
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  explicit ModuleList(std::vector<std::shared_ptr<Module>> modules);
  ModuleList& push_back(std::shared_ptr<Module> m);

  size_t size() const { return modules_.size(); }
  Module& operator[](size_t i) const { return at<Module>(i); }
  template <class M>
  M& at(size_t i) const {
    return detail_containers::typed_at<M>("ModuleList", modules_, i);
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace iris::nn
