// Atomics from many blocks at once (the emulator runs blocks on several OS
// threads) on global memory, and block-local atomics on shared memory.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

std::vector<int> bin_values(int n, int nbins) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * 7919 + i / 3) % nbins;
  return v;
}

std::vector<unsigned> reference_histogram(const std::vector<int>& v, int nbins) {
  std::vector<unsigned> h(nbins, 0);
  for (int x : v) ++h[x];
  return h;
}

TEST(EmuAtomics, GlobalHistogramFromManyBlocks) {
  const int n = 20011, nbins = 37;
  const std::vector<int> values = bin_values(n, nbins);
  DeviceArray<int> dvalues(values);
  DeviceArray<unsigned> bins(nbins);
  bins.fill_zero();
  histogram(dvalues.get(), n, bins.get(), nbins, 40, 64);
  EXPECT_EQ(bins.host(), reference_histogram(values, nbins));
}

TEST(EmuAtomics, SharedMemoryHistogramThenGlobal) {
  const int n = 9001, nbins = 16;
  const std::vector<int> values = bin_values(n, nbins);
  DeviceArray<int> dvalues(values);
  DeviceArray<unsigned> bins(nbins);
  bins.fill_zero();
  histogram_shared(dvalues.get(), n, bins.get(), 12, 96);
  EXPECT_EQ(bins.host(), reference_histogram(values, nbins));
}

TEST(EmuAtomics, AddMinMaxCasIncExchange) {
  const int n = 3000, blocks = 24, threads = 128;  // the last block is partial
  std::vector<float> values(n);
  for (int i = 0; i < n; ++i) values[i] = static_cast<float>((i * 131) % 1000 - 400);
  DeviceArray<float> dvalues(values);
  AtomicResults init{};
  init.imax = -1000000;
  init.imin = 1000000;
  init.fmax_cas = -1e30f;
  init.exch_token = 0;
  DeviceArray<AtomicResults> out(std::vector<AtomicResults>{init});
  DeviceArray<int> exch_prev(n);
  atomic_mix(dvalues.get(), n, out.get(), exch_prev.get(), blocks, threads);
  const AtomicResults r = out.host()[0];
  double sum = 0;
  for (float v : values) sum += v;
  EXPECT_EQ(r.fsum, static_cast<float>(sum));  // integers well inside float's exact range
  EXPECT_EQ(r.dsum, sum);
  EXPECT_EQ(r.imax, static_cast<int>(*std::max_element(values.begin(), values.end())));
  EXPECT_EQ(r.imin, static_cast<int>(*std::min_element(values.begin(), values.end())));
  EXPECT_EQ(r.usum, static_cast<unsigned long long>(n) * (n - 1) / 2);
  EXPECT_EQ(r.fmax_cas, *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(r.inc_wrap, static_cast<unsigned>(n % 10));
  // The tokens seen (plus the one left) are exactly 0..n: each exchange was atomic.
  std::vector<int> seen = exch_prev.host();
  seen.push_back(r.exch_token);
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i <= n; ++i) ASSERT_EQ(seen[i], i);
}

}  // namespace
}  // namespace iris::emu_test
