#pragma once
// One table per kernel, keyed by device type. A backend fills its slot from its
// own source file (IRIS_REGISTER_KERNEL); ops call `name_table().get(device)`.
// The dtype is dispatched inside each backend's kernel.
#include <array>

#include "core/device.h"
#include "core/error.h"

namespace iris::kernels {

template <class Fn>
class KernelTable {
 public:
  explicit KernelTable(const char* name) : name_(name) {}
  void set(DeviceType t, Fn* fn) { fns_[static_cast<int>(t)] = fn; }
  Fn* get(Device d) const {
    Fn* fn = fns_[static_cast<int>(d.type)];
    IRIS_CHECK(fn, name_, ": no kernel for device ", d.str(),
               d.is_cuda() ? " (this op has no CUDA kernel yet, or iris was built without CUDA)"
                           : "");
    return fn;
  }

 private:
  const char* name_;
  std::array<Fn*, kNumDeviceTypes> fns_{};
};

}  // namespace iris::kernels

// In a header: declares kernel `name` with function type `signature`.
#define IRIS_DECLARE_KERNEL(name, signature) \
  using name##_fn = signature;               \
  ::iris::kernels::KernelTable<name##_fn>& name##_table()

// In exactly one .cpp (the CPU backend's, which is always linked): the table itself.
#define IRIS_DEFINE_KERNEL_TABLE(name)                             \
  ::iris::kernels::KernelTable<name##_fn>& name##_table() {        \
    static ::iris::kernels::KernelTable<name##_fn> table(#name);   \
    return table;                                                  \
  }

// In a backend source: fills the backend's slot at load time (tables live in iris::kernels).
#define IRIS_REGISTER_KERNEL(name, device_type, fn)                        \
  [[maybe_unused]] static const bool iris_registered_##name##_##device_type = \
      (::iris::kernels::name##_table().set(::iris::DeviceType::device_type, fn), true)
