#pragma once
// A seeded generator hands out disjoint offset ranges of one Philox stream, so
// a sequence of random ops is reproducible from (seed) on CPU and CUDA alike.
#include <cstdint>
#include <mutex>

namespace iris {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x1badcafe) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    std::lock_guard<std::mutex> lk(mu_);
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves n consecutive elements (rounded up to whole 4-word blocks) and
  // returns the first one's index in the stream.
  uint64_t reserve(uint64_t n) {
    std::lock_guard<std::mutex> lk(mu_);
    const uint64_t first = offset_;
    offset_ += (n + 3) / 4 * 4;
    return first;
  }

 private:
  std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide default generator.
Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace iris
