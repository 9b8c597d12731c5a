#include "nn/data_loader.h"

#include <algorithm>
#include <numeric>

#include "core/philox.h"

namespace iris::nn {

void SkipLog::add(int64_t index, std::string reason) {
  std::lock_guard<std::mutex> lk(mu_);
  entries_.push_back(Entry{index, std::move(reason)});
}

int64_t SkipLog::count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int64_t>(entries_.size());
}

std::vector<SkipLog::Entry> SkipLog::entries() const {
  std::lock_guard<std::mutex> lk(mu_);
  return entries_;
}

void SkipLog::clear() {
  std::lock_guard<std::mutex> lk(mu_);
  entries_.clear();
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t BatchRequest::sample_seed(int64_t index) const {
  return mix_seed(epoch_seed, static_cast<uint64_t>(index));
}

std::vector<int64_t> epoch_order(int64_t size, uint64_t seed, int64_t epoch, bool shuffle) {
  IRIS_CHECK(size >= 0, "epoch_order: negative size ", size);
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  // Fisher-Yates with 64 Philox bits per swap (the modulo bias is below 2^-40 for any
  // realistic dataset size).
  const uint64_t key = mix_seed(seed, static_cast<uint64_t>(epoch));
  for (int64_t i = size - 1; i > 0; --i) {
    const uint64_t k = 2 * static_cast<uint64_t>(i);
    const uint64_t r =
        (static_cast<uint64_t>(philox::bits(key, k)) << 32) | philox::bits(key, k + 1);
    std::swap(order[i], order[r % static_cast<uint64_t>(i + 1)]);
  }
  return order;
}

PaddedTokens pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id,
                           int64_t max_len) {
  IRIS_CHECK(!sequences.empty(), "pad_sequences: no sequences");
  IRIS_CHECK(max_len >= 0, "pad_sequences: max_len must be >= 0 (0 = no limit), got ", max_len);
  const int64_t B = static_cast<int64_t>(sequences.size());
  int64_t L = 0;
  for (const auto& s : sequences) L = std::max<int64_t>(L, static_cast<int64_t>(s.size()));
  if (max_len > 0) L = std::min(L, max_len);
  PaddedTokens out;
  out.ids = Tensor::empty({B, L}, DType::i64);
  out.lengths = Tensor::empty({B}, DType::i32);
  int64_t* ids = out.ids.data<int64_t>();
  int32_t* lengths = out.lengths.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = sequences[b];
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(s.size()), L);
    std::copy(s.begin(), s.begin() + n, ids + b * L);
    std::fill(ids + b * L + n, ids + (b + 1) * L, pad_id);
    lengths[b] = static_cast<int32_t>(n);
  }
  return out;
}

}  // namespace iris::nn
