// Completion of the warp collectives declared in intrinsics.h: every lane
// named in the mask has arrived; compute each lane's result from all operands.
#include "kernels/emu/intrinsics.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/emu/block_state.h"

namespace iris::emu::detail {
namespace {

constexpr uint32_t kLanes = EmuTraits::kWarpSize;

template <class F>
void for_each_lane(const WarpCall& call, F f) {
  for (uint32_t l = 0; l < kLanes; ++l)
    if (call.lanes[l]) f(l, request_of(*call.lanes[l]));
}

template <class V>
V operand(const CollectiveRequest& r) {
  V v;
  std::memcpy(&v, r.in, sizeof(V));
  return v;
}

template <class R>
void set_result(const CollectiveRequest& r, R v) {
  std::memcpy(r.out, &v, sizeof(R));
}

enum class ShuffleMode { Idx, Up, Down, Xor };

// The PTX ISA's shfl.sync: c = ((32 - width) << 8) | clamp, then
// maxLane/minLane from the segment mask; an out-of-range source reads the caller.
template <ShuffleMode M>
void complete_shuffle(WarpCall& call) {
  for_each_lane(call, [&](uint32_t lane, const CollectiveRequest& r) {
    const int b = r.arg0 & 31;
    const int segmask = (32 - r.arg1) & 31;
    const int clamp = M == ShuffleMode::Up ? 0 : 31;
    const int lane_i = static_cast<int>(lane);
    const int max_lane = (lane_i & segmask) | (clamp & ~segmask);
    const int min_lane = lane_i & segmask;
    int j = lane_i;
    bool in_range = false;
    switch (M) {
      case ShuffleMode::Up:
        j = lane_i - b, in_range = j >= max_lane;
        break;
      case ShuffleMode::Down:
        j = lane_i + b, in_range = j <= max_lane;
        break;
      case ShuffleMode::Xor:
        j = lane_i ^ b, in_range = j <= max_lane;
        break;
      case ShuffleMode::Idx:
        j = min_lane | (b & ~segmask), in_range = j <= max_lane;
        break;
    }
    if (!in_range) j = lane_i;
    // A source lane outside the mask has no defined value (CUDA: "undefined"): poison.
    if (((call.mask >> j) & 1u) == 0) {
      std::memset(r.out, EmuTraits::kPoison, r.size);
      return;
    }
    std::memcpy(r.out, request_of(*call.lanes[j]).in, r.size);
  });
}

void complete_ballot(WarpCall& call) {
  uint32_t bits = 0;
  for_each_lane(call, [&](uint32_t l, const CollectiveRequest& r) {
    if (operand<bool>(r)) bits |= 1u << l;
  });
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { set_result<unsigned>(r, bits); });
}

void complete_all(WarpCall& call) {
  int all = 1;
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { all &= operand<bool>(r); });
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { set_result<int>(r, all); });
}

void complete_any(WarpCall& call) {
  int any = 0;
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { any |= operand<bool>(r); });
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { set_result<int>(r, any); });
}

// __syncwarp orders memory among the lanes it names: join their vector clocks.
void complete_syncwarp(WarpCall& call) {
  BlockState& b = *call.block;
  const uint32_t gen = ++b.warp_gen[call.warp];
  std::array<uint32_t, 32> joined{};
  for (uint32_t l = 0; l < kLanes; ++l) {
    if (!call.lanes[l]) continue;
    for (uint32_t i = 0; i < kLanes; ++i)
      joined[i] = std::max(joined[i], call.lanes[l]->synced_gen[i]);
  }
  for (uint32_t i = 0; i < kLanes; ++i)
    if (call.lanes[i]) joined[i] = gen;
  for (uint32_t l = 0; l < kLanes; ++l)
    if (call.lanes[l]) call.lanes[l]->synced_gen = joined;
}

void complete_match_any(WarpCall& call) {
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) {
    uint32_t same = 0;
    for_each_lane(call, [&](uint32_t m, const CollectiveRequest& o) {
      if (std::memcmp(r.in, o.in, r.size) == 0) same |= 1u << m;
    });
    set_result<unsigned>(r, same);
  });
}

template <class V, class F>
void complete_reduce(WarpCall& call, V init, F f) {
  V acc = init;
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { acc = f(acc, operand<V>(r)); });
  for_each_lane(call, [&](uint32_t, const CollectiveRequest& r) { set_result<V>(r, acc); });
}

}  // namespace

const CollectiveOp kShflIdx{"__shfl_sync", complete_shuffle<ShuffleMode::Idx>};
const CollectiveOp kShflUp{"__shfl_up_sync", complete_shuffle<ShuffleMode::Up>};
const CollectiveOp kShflDown{"__shfl_down_sync", complete_shuffle<ShuffleMode::Down>};
const CollectiveOp kShflXor{"__shfl_xor_sync", complete_shuffle<ShuffleMode::Xor>};
const CollectiveOp kBallot{"__ballot_sync", complete_ballot};
const CollectiveOp kAll{"__all_sync", complete_all};
const CollectiveOp kAny{"__any_sync", complete_any};
const CollectiveOp kSyncWarp{"__syncwarp", complete_syncwarp};
const CollectiveOp kMatchAny{"__match_any_sync", complete_match_any};
const CollectiveOp kReduceAddU{"__reduce_add_sync", [](WarpCall& c) {
                                 complete_reduce<unsigned>(
                                     c, 0u, [](unsigned a, unsigned v) { return a + v; });
                               }};
const CollectiveOp kReduceMinU{"__reduce_min_sync", [](WarpCall& c) {
                                 complete_reduce<unsigned>(
                                     c, ~0u, [](unsigned a, unsigned v) { return std::min(a, v); });
                               }};
const CollectiveOp kReduceMaxU{"__reduce_max_sync", [](WarpCall& c) {
                                 complete_reduce<unsigned>(
                                     c, 0u, [](unsigned a, unsigned v) { return std::max(a, v); });
                               }};
const CollectiveOp kReduceAddI{
    "__reduce_add_sync", [](WarpCall& c) {
      // Two's-complement wrap, as the hardware adds.
      complete_reduce<int>(c, 0, [](int a, int v) {
        return static_cast<int>(static_cast<unsigned>(a) + static_cast<unsigned>(v));
      });
    }};
const CollectiveOp kReduceMinI{"__reduce_min_sync", [](WarpCall& c) {
                                 complete_reduce<int>(c, INT_MAX,
                                                      [](int a, int v) { return std::min(a, v); });
                               }};
const CollectiveOp kReduceMaxI{"__reduce_max_sync", [](WarpCall& c) {
                                 complete_reduce<int>(c, INT_MIN,
                                                      [](int a, int v) { return std::max(a, v); });
                               }};
const CollectiveOp kReduceAnd{"__reduce_and_sync", [](WarpCall& c) {
                                complete_reduce<unsigned>(
                                    c, ~0u, [](unsigned a, unsigned v) { return a & v; });
                              }};
const CollectiveOp kReduceOr{"__reduce_or_sync", [](WarpCall& c) {
                               complete_reduce<unsigned>(
                                   c, 0u, [](unsigned a, unsigned v) { return a | v; });
                             }};
const CollectiveOp kReduceXor{"__reduce_xor_sync", [](WarpCall& c) {
                                complete_reduce<unsigned>(
                                    c, 0u, [](unsigned a, unsigned v) { return a ^ v; });
                              }};

void check_shuffle_width(int width, const CollectiveOp& op, const Site& site) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    fail_in_kernel(std::string(op.name) + " (" + describe(site) + "): width " +
                   std::to_string(width) + " is not a power of two between 1 and 32");
  }
}

}  // namespace iris::emu::detail
