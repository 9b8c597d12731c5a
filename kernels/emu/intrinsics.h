#pragma once
// CUDA device intrinsics for the emulator build: block barriers, warp
// shuffles/votes/reductions (rendezvous of the lanes named in the mask),
// atomics (real atomics: blocks run in parallel), math and bit intrinsics.
// Every synchronising call records its call site for error reports.
#include <atomic>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <source_location>
#include <type_traits>

#include "kernels/emu/builtins.h"
#include "kernels/emu/shared.h"
#include "kernels/emu/sync.h"

namespace iris::emu::detail {

extern const CollectiveOp kShflIdx, kShflUp, kShflDown, kShflXor;
extern const CollectiveOp kBallot, kAll, kAny, kSyncWarp, kMatchAny;
extern const CollectiveOp kReduceAddU, kReduceMinU, kReduceMaxU, kReduceAddI, kReduceMinI,
    kReduceMaxI, kReduceAnd, kReduceOr, kReduceXor;

void check_shuffle_width(int width, const CollectiveOp& op, const Site& site);

template <class T>
T shuffle(const CollectiveOp& op, unsigned mask, const T& var, int arg, int width,
          const std::source_location& loc) {
  static_assert(std::is_trivially_copyable_v<T>, "warp shuffles move trivially copyable values");
  const Site site = site_of(loc);
  check_shuffle_width(width, op, site);
  alignas(T) unsigned char out[sizeof(T)];
  warp_collective(CollectiveRequest{&op, mask, sizeof(T), &var, out, arg, width, site});
  T result;
  std::memcpy(static_cast<void*>(&result), out, sizeof(T));
  return result;
}

template <class R, class V>
R vote(const CollectiveOp& op, unsigned mask, V value, const std::source_location& loc) {
  R result{};
  warp_collective(CollectiveRequest{&op, mask, sizeof(V), &value, &result, 0, 0, site_of(loc)});
  return result;
}

// A shuffled shared element travels as its value.
template <class T>
struct shuffle_value {
  using type = T;
};
template <class T>
struct shuffle_value<::iris::emu::SharedRef<T>> {
  using type = std::remove_const_t<T>;
};
template <class T>
using shuffle_value_t = typename shuffle_value<T>::type;

template <class T, class F>
T atomic_update(T* address, F f) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}

template <class T>
T* atomic_target(const ::iris::emu::SharedPtr<T>& p) {
  shared_check_pointer(p.get(), sizeof(T), alignof(T), p.var());
  shared_atomic(p.get(), sizeof(T), p.var());
  return p.get();
}

}  // namespace iris::emu::detail

// ---- block barriers ----
inline void __syncthreads(std::source_location loc = std::source_location::current()) {
  ::iris::emu::detail::block_barrier(::iris::emu::detail::BarrierKind::Plain, 0,
                                     ::iris::emu::detail::site_of(loc));
}
inline int __syncthreads_count(int pred,
                               std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::block_barrier(::iris::emu::detail::BarrierKind::Count, pred,
                                            ::iris::emu::detail::site_of(loc));
}
inline int __syncthreads_and(int pred, std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::block_barrier(::iris::emu::detail::BarrierKind::And, pred,
                                            ::iris::emu::detail::site_of(loc));
}
inline int __syncthreads_or(int pred, std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::block_barrier(::iris::emu::detail::BarrierKind::Or, pred,
                                            ::iris::emu::detail::site_of(loc));
}

// ---- warp synchronisation and shuffles ----
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location loc = std::source_location::current()) {
  ::iris::emu::detail::vote<int>(::iris::emu::detail::kSyncWarp, mask, 0, loc);
}

template <class T>
::iris::emu::detail::shuffle_value_t<T> __shfl_sync(
    unsigned mask, const T& var, int srcLane, int width = warpSize,
    std::source_location loc = std::source_location::current()) {
  using V = ::iris::emu::detail::shuffle_value_t<T>;
  return ::iris::emu::detail::shuffle<V>(::iris::emu::detail::kShflIdx, mask, V(var), srcLane,
                                         width, loc);
}
template <class T>
::iris::emu::detail::shuffle_value_t<T> __shfl_up_sync(
    unsigned mask, const T& var, unsigned int delta, int width = warpSize,
    std::source_location loc = std::source_location::current()) {
  using V = ::iris::emu::detail::shuffle_value_t<T>;
  return ::iris::emu::detail::shuffle<V>(::iris::emu::detail::kShflUp, mask, V(var),
                                         static_cast<int>(delta), width, loc);
}
template <class T>
::iris::emu::detail::shuffle_value_t<T> __shfl_down_sync(
    unsigned mask, const T& var, unsigned int delta, int width = warpSize,
    std::source_location loc = std::source_location::current()) {
  using V = ::iris::emu::detail::shuffle_value_t<T>;
  return ::iris::emu::detail::shuffle<V>(::iris::emu::detail::kShflDown, mask, V(var),
                                         static_cast<int>(delta), width, loc);
}
template <class T>
::iris::emu::detail::shuffle_value_t<T> __shfl_xor_sync(
    unsigned mask, const T& var, int laneMask, int width = warpSize,
    std::source_location loc = std::source_location::current()) {
  using V = ::iris::emu::detail::shuffle_value_t<T>;
  return ::iris::emu::detail::shuffle<V>(::iris::emu::detail::kShflXor, mask, V(var), laneMask,
                                         width, loc);
}

// ---- votes, matches and warp reductions ----
inline unsigned __ballot_sync(unsigned mask, int pred,
                              std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kBallot, mask, pred != 0, loc);
}
inline int __all_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<int>(::iris::emu::detail::kAll, mask, pred != 0, loc);
}
inline int __any_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<int>(::iris::emu::detail::kAny, mask, pred != 0, loc);
}
inline unsigned __activemask(std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::active_mask(::iris::emu::detail::site_of(loc));
}
template <class T>
requires(std::is_integral_v<T> || std::is_floating_point_v<T>) unsigned __match_any_sync(
    unsigned mask, T value, std::source_location loc = std::source_location::current()) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "__match_any_sync takes 32- or 64-bit values");
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kMatchAny, mask, value, loc);
}
inline unsigned __reduce_add_sync(unsigned mask, unsigned value,
                                  std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceAddU, mask, value, loc);
}
inline int __reduce_add_sync(unsigned mask, int value,
                             std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<int>(::iris::emu::detail::kReduceAddI, mask, value, loc);
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value,
                                  std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceMinU, mask, value, loc);
}
inline int __reduce_min_sync(unsigned mask, int value,
                             std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<int>(::iris::emu::detail::kReduceMinI, mask, value, loc);
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value,
                                  std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceMaxU, mask, value, loc);
}
inline int __reduce_max_sync(unsigned mask, int value,
                             std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<int>(::iris::emu::detail::kReduceMaxI, mask, value, loc);
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned value,
                                  std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceAnd, mask, value, loc);
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned value,
                                 std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceOr, mask, value, loc);
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned value,
                                  std::source_location loc = std::source_location::current()) {
  return ::iris::emu::detail::vote<unsigned>(::iris::emu::detail::kReduceXor, mask, value, loc);
}

// ---- atomics (global memory: real atomics; shared memory: bounds-checked) ----
#define IRIS_EMU_ATOMIC_RMW(name, T, expr)                                                        \
  inline T name(T* address, T val) {                                                              \
    return ::iris::emu::detail::atomic_update(address,                                            \
                                              [&]([[maybe_unused]] T old) -> T { return expr; }); \
  }
IRIS_EMU_ATOMIC_RMW(atomicAdd, int, old + val)
IRIS_EMU_ATOMIC_RMW(atomicAdd, unsigned int, old + val)
IRIS_EMU_ATOMIC_RMW(atomicAdd, unsigned long long, old + val)
IRIS_EMU_ATOMIC_RMW(atomicAdd, float, old + val)
IRIS_EMU_ATOMIC_RMW(atomicAdd, double, old + val)
IRIS_EMU_ATOMIC_RMW(atomicSub, int, old - val)
IRIS_EMU_ATOMIC_RMW(atomicSub, unsigned int, old - val)
IRIS_EMU_ATOMIC_RMW(atomicExch, int, val)
IRIS_EMU_ATOMIC_RMW(atomicExch, unsigned int, val)
IRIS_EMU_ATOMIC_RMW(atomicExch, unsigned long long, val)
IRIS_EMU_ATOMIC_RMW(atomicExch, float, val)
IRIS_EMU_ATOMIC_RMW(atomicMin, int, val < old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMin, unsigned int, val < old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMin, long long, val < old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMin, unsigned long long, val < old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMax, int, val > old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMax, unsigned int, val > old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMax, long long, val > old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicMax, unsigned long long, val > old ? val : old)
IRIS_EMU_ATOMIC_RMW(atomicAnd, int, old& val)
IRIS_EMU_ATOMIC_RMW(atomicAnd, unsigned int, old& val)
IRIS_EMU_ATOMIC_RMW(atomicAnd, unsigned long long, old& val)
IRIS_EMU_ATOMIC_RMW(atomicOr, int, old | val)
IRIS_EMU_ATOMIC_RMW(atomicOr, unsigned int, old | val)
IRIS_EMU_ATOMIC_RMW(atomicOr, unsigned long long, old | val)
IRIS_EMU_ATOMIC_RMW(atomicXor, int, old ^ val)
IRIS_EMU_ATOMIC_RMW(atomicXor, unsigned int, old ^ val)
IRIS_EMU_ATOMIC_RMW(atomicXor, unsigned long long, old ^ val)
IRIS_EMU_ATOMIC_RMW(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
IRIS_EMU_ATOMIC_RMW(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef IRIS_EMU_ATOMIC_RMW

#define IRIS_EMU_ATOMIC_CAS(T)                                            \
  inline T atomicCAS(T* address, T compare, T val) {                      \
    std::atomic_ref<T> ref(*address);                                     \
    ref.compare_exchange_strong(compare, val, std::memory_order_relaxed); \
    return compare;                                                       \
  }
IRIS_EMU_ATOMIC_CAS(int)
IRIS_EMU_ATOMIC_CAS(unsigned int)
IRIS_EMU_ATOMIC_CAS(unsigned long long)
IRIS_EMU_ATOMIC_CAS(unsigned short)
#undef IRIS_EMU_ATOMIC_CAS

// The same atomics on shared memory (`atomicAdd(&hist[bin], 1)`).
#define IRIS_EMU_SHARED_ATOMIC(name)                                        \
  template <class T>                                                        \
  T name(const ::iris::emu::SharedPtr<T>& p, std::type_identity_t<T> val) { \
    return name(::iris::emu::detail::atomic_target(p), val);                \
  }
IRIS_EMU_SHARED_ATOMIC(atomicAdd)
IRIS_EMU_SHARED_ATOMIC(atomicSub)
IRIS_EMU_SHARED_ATOMIC(atomicExch)
IRIS_EMU_SHARED_ATOMIC(atomicMin)
IRIS_EMU_SHARED_ATOMIC(atomicMax)
IRIS_EMU_SHARED_ATOMIC(atomicAnd)
IRIS_EMU_SHARED_ATOMIC(atomicOr)
IRIS_EMU_SHARED_ATOMIC(atomicXor)
IRIS_EMU_SHARED_ATOMIC(atomicInc)
IRIS_EMU_SHARED_ATOMIC(atomicDec)
#undef IRIS_EMU_SHARED_ATOMIC
template <class T>
T atomicCAS(const ::iris::emu::SharedPtr<T>& p, std::type_identity_t<T> compare,
            std::type_identity_t<T> val) {
  return atomicCAS(::iris::emu::detail::atomic_target(p), compare, val);
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- loads, clocks, traps ----
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline long long clock64() { return static_cast<long long>(std::clock()); }
inline void __nanosleep(unsigned) {}
[[noreturn]] inline void __trap(std::source_location loc = std::source_location::current()) {
  ::iris::emu::detail::fail_in_kernel(
      "__trap() at " + ::iris::emu::detail::describe(::iris::emu::detail::site_of(loc)));
}

// ---- math: glibc declares __expf and friends itself, so these are macros ----
#define __expf(x) (std::exp(static_cast<float>(x)))
#define __exp10f(x) (std::pow(10.0f, static_cast<float>(x)))
#define __logf(x) (std::log(static_cast<float>(x)))
#define __log2f(x) (std::log2(static_cast<float>(x)))
#define __log10f(x) (std::log10(static_cast<float>(x)))
#define __sinf(x) (std::sin(static_cast<float>(x)))
#define __cosf(x) (std::cos(static_cast<float>(x)))
#define __tanf(x) (std::tan(static_cast<float>(x)))
#define __powf(x, y) (std::pow(static_cast<float>(x), static_cast<float>(y)))
#define __sincosf(x, s, c) \
  (*(s) = std::sin(static_cast<float>(x)), *(c) = std::cos(static_cast<float>(x)))
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
inline double rsqrt(double a) { return 1.0 / std::sqrt(a); }
inline float __saturatef(float a) {
  return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : (a == a ? a : 0.0f));
}
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int min(int a, unsigned int b) { return min(static_cast<unsigned int>(a), b); }
inline unsigned int min(unsigned int a, int b) { return min(a, static_cast<unsigned int>(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline unsigned int max(int a, unsigned int b) { return max(static_cast<unsigned int>(a), b); }
inline unsigned int max(unsigned int a, int b) { return max(a, static_cast<unsigned int>(b)); }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

// ---- bits and reinterpretation ----
inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned int>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned int __brev(unsigned int x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
  const unsigned long long v = (static_cast<unsigned long long>(y) << 32) | x;
  unsigned int r = 0;
  for (int i = 0; i < 4; ++i)
    r |= static_cast<unsigned int>((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
  return r;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline int __float_as_int(float f) { return std::bit_cast<int>(f); }
inline unsigned int __float_as_uint(float f) { return std::bit_cast<unsigned int>(f); }
inline float __int_as_float(int i) { return std::bit_cast<float>(i); }
inline float __uint_as_float(unsigned int u) { return std::bit_cast<float>(u); }
inline long long __double_as_longlong(double d) { return std::bit_cast<long long>(d); }
inline double __longlong_as_double(long long i) { return std::bit_cast<double>(i); }
