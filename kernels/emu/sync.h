#pragma once
// What device code calls into the emulated block: barriers, warp collectives
// (a rendezvous of the lanes named in a mask, completed by the scheduler) and
// errors that name the kernel, block and thread. Call sites travel as
// std::source_location so that every report can name file:line.
#include <cstdint>
#include <source_location>
#include <string>

namespace iris::emu::detail {

struct Site {
  const char* file = nullptr;
  unsigned line = 0;
  const char* function = nullptr;
};
inline Site site_of(const std::source_location& loc) {
  return Site{loc.file_name(), static_cast<unsigned>(loc.line()), loc.function_name()};
}
bool same_site(const Site& a, const Site& b);
std::string describe(const Site& s);  // "file:line"

struct ThreadState;
struct BlockState;
struct WarpCall;

// A warp-level operation. Lanes wait until every lane named in the mask has
// arrived at an operation with the same descriptor, mask and payload size;
// then complete() fills every participant's result.
struct CollectiveOp {
  const char* name;  // as the source spells it: "__shfl_xor_sync"
  void (*complete)(WarpCall& call);
};

struct CollectiveRequest {
  const CollectiveOp* op = nullptr;
  uint32_t mask = 0;
  uint32_t size = 0;         // payload bytes (part of the match)
  const void* in = nullptr;  // this lane's operand, on its own fiber stack
  void* out = nullptr;       // this lane's result
  int32_t arg0 = 0, arg1 = 0;
  Site site;
};

// The participants of a completed collective, by lane (null for lanes outside the mask).
struct WarpCall {
  BlockState* block;
  const CollectiveOp* op;
  uint32_t mask;
  uint32_t warp;
  ThreadState* lanes[32];
};
const CollectiveRequest& request_of(const ThreadState& t);

enum class BarrierKind : uint8_t { Plain, Count, And, Or };

// Device-side entry points (they throw iris::Error when called outside a kernel).
void warp_collective(const CollectiveRequest& req);
int block_barrier(BarrierKind kind, int pred, Site site);
uint32_t active_mask(Site site);
// Lane and warp of the calling emulated thread.
uint32_t current_lane();
uint32_t current_warp();

// Throws iris::Error("emu: kernel 'k' block (..) thread (..): <msg>").
[[noreturn]] void fail_in_kernel(const std::string& msg);
// The same prefix for a given thread (scheduler-side checks).
[[noreturn]] void fail_for_thread(const ThreadState& t, const std::string& msg);
[[noreturn]] void fail_for_block(const BlockState& b, const std::string& msg);

}  // namespace iris::emu::detail
