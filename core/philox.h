#pragma once
// Philox 4x32-10 (Salmon et al., SC'11): a counter-based RNG, so element i of a
// draw is a pure function of (seed, offset + i) on any backend and any thread
// split. Header-only and free of host-only calls so CUDA kernels can use it.
#include <cmath>
#include <cstdint>

#include "core/hd.h"

namespace iris::philox {

struct U32x4 {
  uint32_t v[4];
};

IRIS_HD void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// The 4 x 32-bit block number `counter` (with subsequence `subseq`) for `seed`.
IRIS_HD U32x4 block(uint64_t seed, uint64_t counter, uint64_t subseq = 0) {
  uint32_t c[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                   static_cast<uint32_t>(subseq), static_cast<uint32_t>(subseq >> 32)};
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(0xD2511F53u, c[0], &hi0, &lo0);
    mulhilo(0xCD9E8D57u, c[2], &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return U32x4{{c[0], c[1], c[2], c[3]}};
}

// Element i of a draw is word (i % 4) of block i / 4.
IRIS_HD uint32_t bits(uint64_t seed, uint64_t i) { return block(seed, i >> 2).v[i & 3]; }

// Uniform in [0, 1) with 24 random bits.
IRIS_HD float uniform(uint64_t seed, uint64_t i) {
  return static_cast<float>(bits(seed, i) >> 8) * (1.0f / 16777216.0f);
}

// Standard normal: elements 2j and 2j+1 are the Box-Muller pair of words (2j, 2j+1).
IRIS_HD double normal(uint64_t seed, uint64_t i) {
  const U32x4 b = block(seed, i >> 2);
  const uint32_t w0 = b.v[i & 2], w1 = b.v[(i & 2) + 1];
  // u1 in (0, 1] so log(u1) is finite.
  const double u1 = (static_cast<double>(w0) + 1.0) * (1.0 / 4294967296.0);
  const double u2 = static_cast<double>(w1) * (1.0 / 4294967296.0);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 6.283185307179586 * u2;
  return (i & 1) ? r * std::sin(a) : r * std::cos(a);
}

}  // namespace iris::philox
