// The block scheduler: every thread of a block is a fiber that runs until it
// reaches a barrier, a warp collective or its end. The scheduler resumes ready
// fibers in a seeded random order, releases a barrier when every thread waits
// at the same call site, completes a collective when every lane named in its
// mask has arrived, and turns anything else (divergence, a lane that exited,
// a stall) into an iris::Error that names the kernel and the call sites.
#include "kernels/emu/scheduler.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>

#include "core/error.h"
#include "kernels/emu/block_state.h"
#include "kernels/emu/builtins.h"
#include "kernels/emu/stack_pool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace iris::emu::detail {
namespace {

// AddressSanitizer must be told about every stack switch, or it mistakes the
// fiber stacks for a corrupted thread stack (no-ops in other builds).
void asan_start_switch(void** fake_stack, const void* bottom, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
  (void)fake_stack, (void)bottom, (void)size;
#endif
}
void asan_finish_switch(void* fake_stack, const void** old_bottom, size_t* old_size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
#else
  (void)fake_stack, (void)old_bottom, (void)old_size;
#endif
}

// Thrown inside a fiber whose block is being torn down after an error elsewhere.
struct BlockAborted {};

struct Worker {
  StackPool stacks;
  BlockState block;
};

Worker& worker() {
  static thread_local Worker w;
  return w;
}

thread_local ThreadState* t_thread = nullptr;
thread_local BlockState* t_block = nullptr;

uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

const char* barrier_name(BarrierKind k) {
  switch (k) {
    case BarrierKind::Plain:
      return "__syncthreads";
    case BarrierKind::Count:
      return "__syncthreads_count";
    case BarrierKind::And:
      return "__syncthreads_and";
    case BarrierKind::Or:
      return "__syncthreads_or";
  }
  return "__syncthreads";
}

std::string kernel_name(const BlockState& b) {
  std::string n = b.call ? b.call->name : "?";
  // IRIS_LAUNCH((k<64, 64>), ...) stringifies with the parentheses.
  if (n.size() >= 2 && n.front() == '(' && n.back() == ')') n = n.substr(1, n.size() - 2);
  return n;
}

std::string block_prefix(const BlockState& b) {
  std::ostringstream os;
  os << "emu: kernel '" << kernel_name(b) << "' block (" << b.block_idx.x << "," << b.block_idx.y
     << "," << b.block_idx.z << ")";
  return os.str();
}

// What thread t is doing, for a report: "waits at __syncthreads (f.cu:12)", "has exited".
std::string describe_wait(const ThreadState& t) {
  switch (t.wait) {
    case ThreadWait::Exited:
      return "has exited";
    case ThreadWait::Barrier:
      return std::string("waits at ") + barrier_name(t.barrier_kind) + " (" + describe(t.site) +
             ")";
    case ThreadWait::Collective:
      return std::string("waits at ") + t.req.op->name + " (" + describe(t.site) + ", mask " +
             hex_mask(t.req.mask) + ")";
    case ThreadWait::ActiveMask:
      return "waits at __activemask (" + describe(t.site) + ")";
    case ThreadWait::Ready:
    case ThreadWait::Running:
      return "is runnable";
  }
  return "?";
}

// Fiber side: back to the scheduler until it resumes this thread.
void suspend(ThreadState& t) {
  BlockState& b = *t_block;
  asan_start_switch(&t.asan_fake_stack, b.sched_stack_bottom, b.sched_stack_size);
  t.sink = std::move(t.sink).resume();
  asan_finish_switch(t.asan_fake_stack, &b.sched_stack_bottom, &b.sched_stack_size);
  if (b.aborting) throw BlockAborted{};
}

// Scheduler side: run thread t until it waits or ends.
void resume(ThreadState& t) {
  void* fake_stack = nullptr;
  t_thread = &t;
  ::threadIdx = t.tid;
  asan_start_switch(&fake_stack, static_cast<char*>(t.stack.sp) - t.stack.size, t.stack.size);
  t.fiber = std::move(t.fiber).resume();
  asan_finish_switch(fake_stack, nullptr, nullptr);
  t_thread = nullptr;
}

void make_ready(BlockState& b, ThreadState& t) {
  t.wait = ThreadWait::Ready;
  b.ready.push_back(t.linear);
  ++b.warp_runnable[t.warp];
}

uint32_t lanes_in_warp(const BlockState& b, uint32_t warp) {
  return std::min<uint32_t>(EmuTraits::kWarpSize, b.nthreads - warp * EmuTraits::kWarpSize);
}

ThreadState& lane_thread(BlockState& b, uint32_t warp, uint32_t lane) {
  return b.threads[warp * EmuTraits::kWarpSize + lane];
}

bool same_request(const ThreadState& s, const CollectiveRequest& r) {
  return s.wait == ThreadWait::Collective && s.req.op == r.op && s.req.mask == r.mask &&
         s.req.size == r.size;
}

void release_barrier(BlockState& b) {
  const ThreadState& first = b.threads[0];
  int count = 0;
  for (const ThreadState& t : b.threads) {
    if (!same_site(t.site, first.site) || t.barrier_kind != first.barrier_kind) {
      fail_for_block(b, "divergent barrier: thread " + thread_coords(b, first.linear) +
                            " waits at " + barrier_name(first.barrier_kind) + " (" +
                            describe(first.site) + ") while thread " + thread_coords(b, t.linear) +
                            " waits at " + barrier_name(t.barrier_kind) + " (" + describe(t.site) +
                            "); every thread of a block must reach the same barrier");
    }
    count += t.barrier_pred != 0;
  }
  int result = 0;
  switch (first.barrier_kind) {
    case BarrierKind::Plain:
      break;
    case BarrierKind::Count:
      result = count;
      break;
    case BarrierKind::And:
      result = count == static_cast<int>(b.nthreads);
      break;
    case BarrierKind::Or:
      result = count > 0;
      break;
  }
  ++b.epoch;
  b.interval_start = first.site;
  arena_check_guards(b, (std::string("at ") + barrier_name(first.barrier_kind)).c_str(),
                     first.site);
  b.barrier_arrivals = 0;
  for (ThreadState& t : b.threads) {
    t.barrier_result = result;
    make_ready(b, t);
  }
}

void try_complete(BlockState& b, ThreadState& t) {
  const CollectiveRequest& r = t.req;
  const uint32_t n = lanes_in_warp(b, t.warp);
  if (((r.mask >> t.lane) & 1u) == 0) {
    fail_for_thread(t, std::string(r.op->name) + " (" + describe(r.site) + "): mask " +
                           hex_mask(r.mask) + " does not include the calling lane " +
                           std::to_string(t.lane));
  }
  if (n < EmuTraits::kWarpSize && (r.mask >> n) != 0) {
    fail_for_thread(t, std::string(r.op->name) + " (" + describe(r.site) + "): mask " +
                           hex_mask(r.mask) + " names lanes that do not exist (warp " +
                           std::to_string(t.warp) + " of this block has " + std::to_string(n) +
                           " lanes)");
  }
  for (uint32_t l = 0; l < n; ++l) {
    if (((r.mask >> l) & 1u) == 0) continue;
    const ThreadState& s = lane_thread(b, t.warp, l);
    if (s.wait == ThreadWait::Exited) {
      fail_for_thread(t, std::string(r.op->name) + " (" + describe(r.site) + ") with mask " +
                             hex_mask(r.mask) + " names lane " + std::to_string(l) + " (thread " +
                             thread_coords(b, s.linear) +
                             "), which has exited; every lane in the mask must take part");
    }
    if (!same_request(s, r)) return;  // not all there yet
  }
  WarpCall call{&b, r.op, r.mask, t.warp, {}};
  for (uint32_t l = 0; l < n; ++l)
    if ((r.mask >> l) & 1u) call.lanes[l] = &lane_thread(b, t.warp, l);
  r.op->complete(call);
  for (uint32_t l = 0; l < n; ++l)
    if ((r.mask >> l) & 1u) make_ready(b, lane_thread(b, t.warp, l));
}

// A lane that exits strands every collective of its warp that names it.
void on_exit(BlockState& b, ThreadState& t) {
  const uint32_t n = lanes_in_warp(b, t.warp);
  for (uint32_t l = 0; l < n; ++l) {
    const ThreadState& s = lane_thread(b, t.warp, l);
    if (s.wait == ThreadWait::Collective && ((s.req.mask >> t.lane) & 1u)) {
      fail_for_thread(s, std::string(s.req.op->name) + " (" + describe(s.site) + ") with mask " +
                             hex_mask(s.req.mask) + " waits for lane " + std::to_string(t.lane) +
                             " (thread " + thread_coords(b, t.linear) +
                             "), which has exited; every lane in the mask must take part");
    }
  }
}

// __activemask: once no lane of the warp can run, the lanes waiting at the same
// call site are the converged set.
void resolve_active_mask(BlockState& b, uint32_t warp) {
  const uint32_t n = lanes_in_warp(b, warp);
  uint32_t done = 0;
  for (uint32_t l = 0; l < n; ++l) {
    ThreadState& s = lane_thread(b, warp, l);
    if (s.wait != ThreadWait::ActiveMask || ((done >> l) & 1u)) continue;
    uint32_t group = 0;
    for (uint32_t m = l; m < n; ++m) {
      const ThreadState& o = lane_thread(b, warp, m);
      if (o.wait == ThreadWait::ActiveMask && same_site(o.site, s.site)) group |= 1u << m;
    }
    for (uint32_t m = l; m < n; ++m) {
      if ((group >> m) & 1u) {
        ThreadState& o = lane_thread(b, warp, m);
        o.active_mask_result = group;
        make_ready(b, o);
      }
    }
    done |= group;
  }
  b.warp_active_wait[warp] = 0;
}

void after_yield(BlockState& b, ThreadState& t) {
  --b.warp_runnable[t.warp];
  switch (t.wait) {
    case ThreadWait::Exited:
      ++b.exited;
      on_exit(b, t);
      break;
    case ThreadWait::Barrier:
      if (++b.barrier_arrivals == b.nthreads) release_barrier(b);
      break;
    case ThreadWait::Collective:
      try_complete(b, t);
      break;
    case ThreadWait::ActiveMask:
      ++b.warp_active_wait[t.warp];
      break;
    case ThreadWait::Ready:
    case ThreadWait::Running:
      fail_for_thread(t, "internal: a thread yielded without waiting");
  }
  if (b.warp_runnable[t.warp] == 0 && b.warp_active_wait[t.warp] > 0)
    resolve_active_mask(b, t.warp);
}

// No thread can run and not all have exited: say who waits for whom.
[[noreturn]] void diagnose_stall(BlockState& b) {
  for (const ThreadState& t : b.threads) {
    if (t.wait != ThreadWait::Collective) continue;
    const uint32_t n = lanes_in_warp(b, t.warp);
    for (uint32_t l = 0; l < n; ++l) {
      if (((t.req.mask >> l) & 1u) == 0) continue;
      const ThreadState& s = lane_thread(b, t.warp, l);
      if (same_request(s, t.req)) continue;
      fail_for_block(b, "deadlock: thread " + thread_coords(b, t.linear) + " waits at " +
                            t.req.op->name + " (" + describe(t.site) + ", mask " +
                            hex_mask(t.req.mask) + ") for lane " + std::to_string(l) + " (thread " +
                            thread_coords(b, s.linear) + "), which " + describe_wait(s));
    }
  }
  // Only barriers are left, so some threads exited (or sit at another barrier).
  std::ostringstream os;
  os << "divergent barrier: ";
  const ThreadState* exited = nullptr;
  std::vector<const ThreadState*> groups;
  std::vector<int> counts;
  uint32_t nexited = 0;
  for (const ThreadState& t : b.threads) {
    if (t.wait == ThreadWait::Exited) {
      if (!exited) exited = &t;
      ++nexited;
      continue;
    }
    bool found = false;
    for (size_t g = 0; g < groups.size(); ++g) {
      if (groups[g]->wait == t.wait && same_site(groups[g]->site, t.site)) {
        ++counts[g];
        found = true;
        break;
      }
    }
    if (!found) {
      groups.push_back(&t);
      counts.push_back(1);
    }
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string what = describe_wait(*groups[g]);
    if (counts[g] > 1 && what.rfind("waits", 0) == 0) what.erase(4, 1);  // "wait at"
    os << (g ? "; " : "") << counts[g] << (counts[g] > 1 ? " threads " : " thread ") << what
       << " (e.g. thread " << thread_coords(b, groups[g]->linear) << ")";
  }
  if (exited) {
    os << "; " << nexited << (nexited > 1 ? " threads" : " thread")
       << " exited without reaching it (e.g. thread " << thread_coords(b, exited->linear) << ")";
  }
  os << "; every thread of a block must reach every barrier";
  fail_for_block(b, os.str());
}

// The body of every fiber.
boost::context::fiber fiber_main(BlockState& b, ThreadState& t, boost::context::fiber&& sink) {
  t.sink = std::move(sink);
  asan_finish_switch(nullptr, &b.sched_stack_bottom, &b.sched_stack_size);
  if (!b.aborting) {
    try {
      b.call->invoke(b.call->packed);
    } catch (const BlockAborted&) {
      // torn down after an error in another thread: just end
    } catch (const boost::context::detail::forced_unwind&) {
      throw;
    } catch (...) {
      t.error = std::current_exception();
    }
  }
  t.wait = ThreadWait::Exited;
  asan_start_switch(nullptr, b.sched_stack_bottom, b.sched_stack_size);  // this stack dies
  return std::move(t.sink);
}

// After an error, every fiber still suspended is resumed once with the block
// marked aborting: its pending wait throws BlockAborted and the fiber ends.
struct FiberCleanup {
  BlockState& b;
  ~FiberCleanup() {
    b.aborting = true;
    for (ThreadState& t : b.threads) {
      if (t.fiber) resume(t);
    }
    b.aborting = false;
    t_block = nullptr;
  }
};

void setup_block(BlockState& b, const KernelCall& call, uint3 block_idx, dim3 grid, dim3 block,
                 size_t dynamic_bytes, const Config& cfg) {
  b.call = &call;
  b.block_idx = block_idx;
  b.grid_dim = grid;
  b.block_dim = block;
  b.nthreads = block.x * block.y * block.z;
  b.nwarps = (b.nthreads + EmuTraits::kWarpSize - 1) / EmuTraits::kWarpSize;
  b.dynamic_bytes = dynamic_bytes;
  b.race_check = cfg.race_check;
  b.barrier_arrivals = 0;
  b.exited = 0;
  ++b.epoch;
  ++b.serial;
  b.interval_start = Site{};
  const uint64_t linear_block =
      block_idx.x +
      static_cast<uint64_t>(grid.x) * (block_idx.y + static_cast<uint64_t>(grid.y) * block_idx.z);
  b.rng_state = cfg.seed ^ (linear_block * 0x9e3779b97f4a7c15ull) ^ hash_name(call.name);
  b.threads.resize(b.nthreads);
  b.ready.clear();
  b.ready.reserve(b.nthreads);
  b.warp_runnable.assign(b.nwarps, 0);
  b.warp_active_wait.assign(b.nwarps, 0);
  b.warp_gen.assign(b.nwarps, 0);
  for (uint32_t i = 0; i < b.nthreads; ++i) {
    ThreadState& t = b.threads[i];
    t.tid = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
    t.linear = i;
    t.lane = i % EmuTraits::kWarpSize;
    t.warp = i / EmuTraits::kWarpSize;
    t.site = Site{};
    t.req = CollectiveRequest{};
    t.synced_gen.fill(0);
    t.uncommitted.clear();
    t.committed.clear();
    t.error = nullptr;
  }
}

}  // namespace

BlockState* current_block_state() { return t_block; }
ThreadState* current_thread_state() { return t_thread; }

ThreadState& require_thread(const char* what) {
  if (!t_thread) IRIS_FAIL("emu: ", what, " called outside an emulated kernel");
  return *t_thread;
}

bool same_site(const Site& a, const Site& b) {
  if (a.line != b.line) return false;
  if (a.file == b.file) return true;
  return a.file && b.file && std::strcmp(a.file, b.file) == 0;
}

std::string describe(const Site& s) {
  if (!s.file) return "kernel start";
  return std::string(s.file) + ":" + std::to_string(s.line);
}

std::string hex_mask(uint32_t mask) {
  std::ostringstream os;
  os << "0x" << std::hex << mask;
  return os.str();
}

std::string thread_coords(const BlockState& b, uint32_t linear) {
  const uint32_t bx = b.block_dim.x, by = b.block_dim.y;
  std::ostringstream os;
  os << "(" << linear % bx << "," << (linear / bx) % by << "," << linear / (bx * by) << ")";
  return os.str();
}

const CollectiveRequest& request_of(const ThreadState& t) { return t.req; }

void fail_for_block(const BlockState& b, const std::string& msg) {
  IRIS_FAIL(block_prefix(b), ": ", msg);
}

void fail_for_thread(const ThreadState& t, const std::string& msg) {
  const BlockState& b = *t_block;
  IRIS_FAIL(block_prefix(b), " thread ", thread_coords(b, t.linear), ": ", msg);
}

void fail_in_kernel(const std::string& msg) { fail_for_thread(require_thread("device code"), msg); }

int block_barrier(BarrierKind kind, int pred, Site site) {
  ThreadState& t = require_thread(barrier_name(kind));
  t.wait = ThreadWait::Barrier;
  t.site = site;
  t.barrier_kind = kind;
  t.barrier_pred = pred;
  suspend(t);
  return t.barrier_result;
}

void warp_collective(const CollectiveRequest& req) {
  ThreadState& t = require_thread(req.op->name);
  t.req = req;
  t.site = req.site;
  t.wait = ThreadWait::Collective;
  suspend(t);
}

uint32_t active_mask(Site site) {
  ThreadState& t = require_thread("__activemask");
  t.wait = ThreadWait::ActiveMask;
  t.site = site;
  suspend(t);
  return t.active_mask_result;
}

uint32_t current_lane() { return require_thread("the lane id").lane; }
uint32_t current_warp() { return require_thread("the warp id").warp; }

bool inside_kernel() { return t_thread != nullptr; }

void run_block(const KernelCall& call, uint3 block_idx, dim3 grid, dim3 block, size_t dynamic_bytes,
               const Config& cfg) {
  Worker& w = worker();
  BlockState& b = w.block;
  setup_block(b, call, block_idx, grid, block, dynamic_bytes, cfg);
  ::blockIdx = block_idx;
  ::blockDim = block;
  ::gridDim = grid;
  t_block = &b;
  FiberCleanup cleanup{b};
  arena_begin_block(b);
  for (ThreadState& t : b.threads) {
    t.fiber = boost::context::fiber(
        std::allocator_arg, PooledStack(&w.stacks, cfg.stack_bytes, &t.stack),
        [&b, &t](boost::context::fiber&& sink) { return fiber_main(b, t, std::move(sink)); });
    make_ready(b, t);
  }
  for (;;) {
    while (!b.ready.empty()) {
      const size_t k = next_random(b.rng_state) % b.ready.size();
      ThreadState& t = b.threads[b.ready[k]];
      b.ready[k] = b.ready.back();
      b.ready.pop_back();
      t.wait = ThreadWait::Running;
      resume(t);
      if (t.error) std::rethrow_exception(t.error);
      after_yield(b, t);
    }
    if (b.exited == b.nthreads) break;
    diagnose_stall(b);
  }
  arena_check_guards(b, "at the end of the block", Site{});
}

}  // namespace iris::emu::detail
