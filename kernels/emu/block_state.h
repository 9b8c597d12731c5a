#pragma once
// Internal to the emulator (.cpp files only): the state of one emulated block,
// its threads (fibers) and its shared-memory arena with the race detector's
// shadow cells. One worker (OS thread) runs one block at a time and reuses all
// of this from block to block.
#include <array>
#include <boost/context/fiber.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <vector>

#include "kernels/emu/cuda_types.h"
#include "kernels/emu/runtime.h"
#include "kernels/emu/shared.h"
#include "kernels/emu/sync.h"

namespace iris::emu::detail {

struct EmuTraits {
  static constexpr uint32_t kWarpSize = 32;
  static constexpr uint32_t kMaxThreadsPerBlock = 1024;
  static constexpr uint32_t kMaxBlockDimZ = 64;
  static constexpr uint32_t kMaxGridDimYZ = 65535;
  static constexpr size_t kMaxStaticShared = 48 << 10;  // per kernel, as ptxas enforces
  static constexpr size_t kMaxSharedPerBlock = 232448;  // sm_90 opt-in limit (227 KB)
  static constexpr size_t kGuardBytes = 64;             // poison around every variable
  static constexpr size_t kMaxSharedVars = 128;
  static constexpr size_t kSharedAlign = 16;      // IRIS_SHARED aligns to 16 on nvcc too
  static constexpr unsigned char kPoison = 0xFF;  // NaN floats, -1 integers
  static_assert(kGuardBytes % kSharedAlign == 0, "guards keep variables aligned");
  static_assert(kMaxThreadsPerBlock % kWarpSize == 0, "whole warps");
};

enum class ThreadWait : uint8_t { Ready, Running, Barrier, Collective, ActiveMask, Exited };

struct PendingCopy {
  unsigned char* dst;
  uint32_t bytes;
  unsigned char data[16];
  Site site;
};

struct ThreadState {
  boost::context::fiber fiber;  // this thread, while it is suspended
  boost::context::fiber sink;   // the block scheduler, while this thread runs
  boost::context::stack_context stack{};
  void* asan_fake_stack = nullptr;
  uint3 tid{};
  uint32_t linear = 0, lane = 0, warp = 0;
  ThreadWait wait = ThreadWait::Ready;
  Site site;  // where it waits
  BarrierKind barrier_kind = BarrierKind::Plain;
  int barrier_pred = 0;
  int barrier_result = 0;
  CollectiveRequest req;
  uint32_t active_mask_result = 0;
  // For lane l of this warp: the newest __syncwarp generation that ordered l before this thread.
  std::array<uint32_t, 32> synced_gen{};
  std::vector<PendingCopy> uncommitted;            // cp.async issued since the last commit
  std::deque<std::vector<PendingCopy>> committed;  // oldest group first
  std::exception_ptr error;
};

// Accesses of one kind to one shared byte within a barrier interval (epoch):
// which lanes of which warp (or several warps), the newest __syncwarp
// generation among them, and two thread ids for reports.
struct AccessSet {
  uint32_t epoch = 0, gen = 0, lanes = 0;
  uint16_t warp = 0, tid = 0, tid_other_warp = 0;
};
constexpr uint16_t kManyWarps = 0xFFFF;

// One byte of shared memory as the race detector sees it: the last writer,
// the readers and atomic updaters since, and a pending cp.async.
struct ShadowCell {
  uint32_t w_epoch = 0, w_gen = 0;
  uint16_t w_tid = 0;
  uint16_t async_tid = 0;    // issuing thread + 1 of a pending cp.async (0: none)
  uint32_t async_block = 0;  // ... in this block serial
  AccessSet reads, atomics;
};

struct SharedArena {
  std::unique_ptr<unsigned char[]> memory;
  size_t capacity = 0;
  unsigned char* base = nullptr;  // 64-byte aligned start inside memory
  size_t used = 0;                // bytes handed out, guards included
  size_t static_bytes = 0;        // IRIS_SHARED bytes of the current block
  std::vector<SharedVar> vars;    // address order; reserved so pointers stay valid
  SharedVar dynamic{};
  bool has_dynamic = false;
  std::vector<ShadowCell> shadow;
};

struct BlockState {
  const KernelCall* call = nullptr;
  uint3 block_idx{};
  dim3 block_dim, grid_dim;
  uint32_t nthreads = 0, nwarps = 0;
  size_t dynamic_bytes = 0;
  std::vector<ThreadState> threads;
  std::vector<uint32_t> ready;
  std::vector<uint32_t> warp_runnable;     // lanes ready or running, per warp
  std::vector<uint32_t> warp_active_wait;  // lanes waiting in __activemask, per warp
  std::vector<uint32_t> warp_gen;          // completed __syncwarps, per warp
  uint32_t barrier_arrivals = 0;
  uint32_t exited = 0;
  uint64_t rng_state = 0;
  bool race_check = true;
  bool aborting = false;                     // tearing down after an error: every wait throws
  const void* sched_stack_bottom = nullptr;  // the worker's own stack (AddressSanitizer)
  size_t sched_stack_size = 0;
  uint32_t epoch = 0;   // current barrier interval (unique per worker)
  uint32_t serial = 0;  // this block (unique per worker)
  Site interval_start;  // the barrier that opened the current interval (empty: kernel start)
  SharedArena arena;
};

// The worker's block state and the thread now running on this OS thread (null outside kernels).
BlockState* current_block_state();
ThreadState* current_thread_state();
ThreadState& require_thread(const char* what);

// Shared arena lifecycle (shared.cpp).
void arena_begin_block(BlockState& b);
void arena_check_guards(BlockState& b, const char* when, const Site& site);
// Race-detector access on behalf of a given thread (ldmatrix, cp.async). An atomic is
// checked against plain reads and writes of the interval but not recorded.
enum class Access : uint8_t { Read, Write, Atomic };
void shadow_access(BlockState& b, const ThreadState& t, const unsigned char* p, size_t bytes,
                   Access access, const SharedVar* var);
// The variable that holds [p, p+bytes), or an iris::Error naming the nearest one.
const SharedVar* find_shared_var(BlockState& b, const ThreadState& t, const void* p, size_t bytes,
                                 size_t align, const char* op, const Site& site);
void mark_async(BlockState& b, const ThreadState& t, unsigned char* p, size_t bytes, bool pending);
// Lands every copy of the given groups (cp.async.wait_group semantics).
void land_copies(BlockState& b, ThreadState& t, std::vector<PendingCopy>& copies);

std::string thread_coords(const BlockState& b, uint32_t linear);  // "(x,y,z)"
std::string hex_mask(uint32_t mask);

}  // namespace iris::emu::detail
