#pragma once
// Helpers for the emulator tests: device arrays, a scoped emulator
// configuration, and an expectation that a statement throws an iris::Error
// whose message contains every given piece.
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/emu/runtime.h"

namespace iris::emu_test {

// A device allocation filled from / read back into a host vector.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n), ptr_(static_cast<T*>(emu::malloc(n * sizeof(T)))) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    emu::memcpy(ptr_, host.data(), n_ * sizeof(T), emu::CopyKind::HostToDevice);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { emu::free(ptr_); }

  T* get() const { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> out(n_);
    emu::memcpy(out.data(), ptr_, n_ * sizeof(T), emu::CopyKind::DeviceToHost);
    return out;
  }
  void fill_zero() { emu::memset(ptr_, 0, n_ * sizeof(T)); }

 private:
  size_t n_;
  T* ptr_;
};

// Sets the emulator configuration for one scope.
class ScopedConfig {
 public:
  explicit ScopedConfig(const emu::Config& c) : saved_(emu::config()) { emu::set_config(c); }
  ~ScopedConfig() { emu::set_config(saved_); }

 private:
  emu::Config saved_;
};

inline emu::Config with_seed(uint64_t seed) {
  emu::Config c = emu::config();
  c.seed = seed;
  return c;
}

// The distinct "file:line" sites of `file` named in msg ("bug_kernels.cu:12", ...).
inline std::set<std::string> sites_in(const std::string& msg, const std::string& file) {
  std::set<std::string> sites;
  for (size_t at = msg.find(file + ":"); at != std::string::npos;
       at = msg.find(file + ":", at + 1)) {
    size_t end = at + file.size() + 1;
    while (end < msg.size() && msg[end] >= '0' && msg[end] <= '9') ++end;
    sites.insert(msg.substr(at, end - at));
  }
  return sites;
}

// Runs fn; succeeds when it throws iris::Error containing every needle.
// The message is returned through *message for further checks.
inline ::testing::AssertionResult throws_error_with(const std::function<void()>& fn,
                                                    std::initializer_list<std::string> needles,
                                                    std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string what = e.what();
    if (message) *message = what;
    for (const std::string& n : needles) {
      if (what.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << n << "\": " << what;
    }
    return ::testing::AssertionSuccess() << what;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-iris exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace iris::emu_test

#define EXPECT_EMU_ERROR(stmt, ...) \
  EXPECT_TRUE(::iris::emu_test::throws_error_with([&] { stmt; }, {__VA_ARGS__}))
