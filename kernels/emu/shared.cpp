// Shared memory of an emulated block: the arena (dynamic region first, then
// every IRIS_SHARED variable in the order threads reach it, each followed by
// poison guard bytes), bounds errors, and the race detector.
//
// Race detector: per shared byte, the last writer and the readers since, each
// stamped with the barrier interval (epoch) and the warp's __syncwarp
// generation. Two accesses by different threads, at least one a write, race
// unless a __syncthreads separates them (different epoch) or both threads are
// in one warp and a __syncwarp naming both came after the first one.
#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>

#include "core/error.h"
#include "kernels/emu/block_state.h"

namespace iris::emu::detail {
namespace {

using T = EmuTraits;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

BlockState& block_for(const char* what) {
  require_thread(what);
  return *current_block_state();
}

std::string declared_at(const SharedVar& v) {
  if (!v.file) return "";
  return std::string(" (declared at ") + v.file + ":" + std::to_string(v.line) + ")";
}

// "'tile'[3][5]" for an IRIS_SHARED array, "byte 12 of 'smem'" otherwise.
std::string describe_byte(const SharedVar& v, const unsigned char* p) {
  const size_t off = static_cast<size_t>(p - v.begin);
  std::ostringstream os;
  if (v.decl && v.decl->rank > 0 && v.elem_size > 0) {
    size_t flat = off / v.elem_size;
    size_t idx[4] = {0, 0, 0, 0};
    for (int d = static_cast<int>(v.decl->rank) - 1; d >= 0; --d) {
      idx[d] = flat % v.decl->extents[d];
      flat /= v.decl->extents[d];
    }
    os << "'" << v.name << "'";
    for (unsigned d = 0; d < v.decl->rank; ++d) os << "[" << idx[d] << "]";
    if (off % v.elem_size) os << " (byte " << off % v.elem_size << ")";
  } else if (v.decl) {
    os << "'" << v.name << "'";
  } else {
    os << "byte " << off << " of dynamic shared memory '" << v.name << "'";
  }
  return os.str();
}

std::string interval(const BlockState& b) {
  if (!b.interval_start.file) return "since the kernel started";
  return "since the barrier at " + describe(b.interval_start);
}

[[noreturn]] void race(const BlockState& b, const ThreadState& t, const SharedVar& v,
                       const unsigned char* p, const char* mine, uint32_t other,
                       const char* theirs) {
  fail_for_thread(t, std::string("shared-memory race on ") + describe_byte(v, p) + declared_at(v) +
                         ": this thread " + mine + " it and thread " + thread_coords(b, other) +
                         " " + theirs + " it in the same barrier " + "interval (" + interval(b) +
                         ") with no __syncthreads (or __syncwarp over both) between; a "
                         "missing barrier?");
}

const PendingCopy* find_pending(const BlockState& b, uint32_t tid, const unsigned char* p) {
  const ThreadState& o = b.threads[tid];
  auto covers = [&](const PendingCopy& c) { return p >= c.dst && p < c.dst + c.bytes; };
  for (const PendingCopy& c : o.uncommitted)
    if (covers(c)) return &c;
  for (const auto& g : o.committed)
    for (const PendingCopy& c : g)
      if (covers(c)) return &c;
  return nullptr;
}

// Threads other than the writer may touch a byte in the same interval only
// after a __syncwarp that ordered them (same warp).
bool ordered_after(const ThreadState& t, uint32_t other_tid, uint32_t other_gen) {
  if (other_tid / T::kWarpSize != t.warp) return false;
  return t.synced_gen[other_tid % T::kWarpSize] > other_gen;
}

// A thread of the set that t is not ordered after (-1: none). One from another
// warp is never ordered; lanes of t's warp are when a __syncwarp naming both
// came after the newest of their accesses.
int unordered_member(const BlockState& b, const ThreadState& t, const AccessSet& set) {
  if (set.epoch != b.epoch) return -1;
  if (set.warp == kManyWarps || set.warp != t.warp)
    return set.tid / T::kWarpSize != t.warp ? set.tid : set.tid_other_warp;
  const uint32_t others = set.lanes & ~(1u << t.lane);
  for (uint32_t l = 0; l < T::kWarpSize; ++l) {
    if (((others >> l) & 1u) && !(t.synced_gen[l] > set.gen))
      return static_cast<int>(t.warp * T::kWarpSize + l);
  }
  return -1;
}

void add_member(const BlockState& b, const ThreadState& t, uint32_t gen, AccessSet& set) {
  if (set.epoch != b.epoch) {
    set = AccessSet{
        b.epoch, gen, 1u << t.lane, static_cast<uint16_t>(t.warp), static_cast<uint16_t>(t.linear),
        0};
  } else if (set.warp == t.warp) {
    set.lanes |= 1u << t.lane;
    set.gen = std::max(set.gen, gen);
  } else if (set.warp != kManyWarps) {
    set.warp = kManyWarps;
    set.tid_other_warp = static_cast<uint16_t>(t.linear);
  }
}

}  // namespace

void arena_begin_block(BlockState& b) {
  SharedArena& a = b.arena;
  const size_t dyn = round_up(b.dynamic_bytes, T::kSharedAlign);
  const size_t need = T::kGuardBytes + dyn + T::kGuardBytes + T::kMaxStaticShared +
                      T::kMaxSharedVars * (T::kGuardBytes + 128);
  if (a.capacity < need) {
    a.memory.reset(new unsigned char[need + 64]);
    a.capacity = need;
    const uintptr_t raw = reinterpret_cast<uintptr_t>(a.memory.get());
    a.base = reinterpret_cast<unsigned char*>(round_up(raw, 64));
    a.shadow.assign(need, ShadowCell{});
  }
  if (a.vars.capacity() < T::kMaxSharedVars) a.vars.reserve(T::kMaxSharedVars);
  a.vars.clear();
  a.static_bytes = 0;
  a.dynamic = SharedVar{nullptr,
                        "(dynamic)",
                        nullptr,
                        0,
                        1,
                        a.base + T::kGuardBytes,
                        a.base + T::kGuardBytes + b.dynamic_bytes};
  a.used = T::kGuardBytes + dyn + T::kGuardBytes;
  std::memset(a.base, T::kPoison, a.used);
}

const SharedVar* shared_bind(const SharedDecl& decl) {
  BlockState& b = block_for("IRIS_SHARED");
  SharedArena& a = b.arena;
  for (const SharedVar& v : a.vars)
    if (v.decl == &decl) return &v;
  if (a.vars.size() >= T::kMaxSharedVars)
    fail_in_kernel("more than " + std::to_string(T::kMaxSharedVars) + " IRIS_SHARED variables");
  const size_t align = std::max(decl.align, T::kSharedAlign);
  if (align > 128)
    fail_in_kernel(std::string("IRIS_SHARED '") + decl.name + "': alignment above 128");
  a.static_bytes += decl.bytes;
  if (a.static_bytes > T::kMaxStaticShared) {
    fail_in_kernel(std::string("static shared memory exceeds ") +
                   std::to_string(T::kMaxStaticShared) + " bytes: '" + decl.name + "' (" +
                   decl.file + ":" + std::to_string(decl.line) + ") brings it to " +
                   std::to_string(a.static_bytes));
  }
  if (a.static_bytes + b.dynamic_bytes > T::kMaxSharedPerBlock) {
    fail_in_kernel("static (" + std::to_string(a.static_bytes) + ") plus dynamic (" +
                   std::to_string(b.dynamic_bytes) + ") shared memory exceed " +
                   std::to_string(T::kMaxSharedPerBlock) + " bytes");
  }
  const size_t offset = round_up(a.used, align);
  const size_t end = offset + decl.bytes + T::kGuardBytes;
  std::memset(a.base + a.used, T::kPoison, end - a.used);
  a.used = end;
  a.vars.push_back(SharedVar{&decl, decl.name, decl.file, decl.line, decl.elem_size,
                             a.base + offset, a.base + offset + decl.bytes});
  return &a.vars.back();
}

const SharedVar* dynamic_shared(const char* name, size_t align) {
  BlockState& b = block_for("IRIS_DYNAMIC_SHARED");
  if (align > T::kSharedAlign) {
    fail_in_kernel(std::string("IRIS_DYNAMIC_SHARED '") + name + "': alignment " +
                   std::to_string(align) + " above the 16 bytes nvcc guarantees");
  }
  SharedVar& v = b.arena.dynamic;
  if (std::strcmp(v.name, "(dynamic)") == 0) v.name = name;
  return &v;
}

[[noreturn]] void shared_index_error(const SharedVar* var, long long index, size_t extent) {
  fail_in_kernel("out-of-bounds shared memory index " + std::to_string(index) +
                 " into a dimension of size " + std::to_string(extent) + " of '" + var->name + "'" +
                 declared_at(*var));
}

void shared_check_pointer(const void* p, size_t bytes, size_t align, const SharedVar* var) {
  if (!var) fail_in_kernel("dereferencing a shared-memory pointer that points nowhere");
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < var->begin || c + bytes > var->end) {
    const long long off = c - var->begin;
    fail_in_kernel("out-of-bounds shared memory access: bytes [" + std::to_string(off) + ", " +
                   std::to_string(off + static_cast<long long>(bytes)) + ") of " +
                   (var->decl ? "'" + std::string(var->name) + "'"
                              : "dynamic shared memory '" + std::string(var->name) + "'") +
                   declared_at(*var) + ", which has " + std::to_string(var->end - var->begin) +
                   " bytes");
  }
  if (reinterpret_cast<uintptr_t>(p) % align) {
    fail_in_kernel("misaligned shared memory access: " + describe_byte(*var, c) + " is not " +
                   std::to_string(align) + "-byte aligned");
  }
}

void shadow_access(BlockState& b, const ThreadState& t, const unsigned char* p, size_t bytes,
                   Access access, const SharedVar* var) {
  const char* mine = access == Access::Read    ? "reads"
                     : access == Access::Write ? "writes"
                                               : "atomically updates";
  const size_t base = static_cast<size_t>(p - b.arena.base);
  const uint32_t gen = b.warp_gen[t.warp];
  for (size_t i = 0; i < bytes; ++i) {
    ShadowCell& c = b.arena.shadow[base + i];
    if (c.async_block == b.serial && c.async_tid != 0) {
      const PendingCopy* pc = find_pending(b, c.async_tid - 1u, p + i);
      fail_for_thread(t, std::string(mine) + " " + describe_byte(*var, p + i) + declared_at(*var) +
                             " while a cp.async into it (issued by thread " +
                             thread_coords(b, c.async_tid - 1u) +
                             (pc ? " at " + describe(pc->site) : std::string()) +
                             ") has not been waited for: a missing cp_async_wait?");
    }
    if (c.w_epoch == b.epoch && c.w_tid != t.linear && !ordered_after(t, c.w_tid, c.w_gen))
      race(b, t, *var, p + i, mine, c.w_tid, "wrote");
    // Reads conflict with writes and atomics, atomics with plain accesses only.
    if (access != Access::Read) {
      const int other = unordered_member(b, t, c.reads);
      if (other >= 0) race(b, t, *var, p + i, mine, static_cast<uint32_t>(other), "read");
    }
    if (access != Access::Atomic) {
      const int other = unordered_member(b, t, c.atomics);
      if (other >= 0)
        race(b, t, *var, p + i, mine, static_cast<uint32_t>(other), "atomically updated");
    }
    switch (access) {
      case Access::Write:
        c.w_epoch = b.epoch;
        c.w_tid = static_cast<uint16_t>(t.linear);
        c.w_gen = gen;
        c.reads.epoch = 0;
        c.atomics.epoch = 0;
        break;
      case Access::Read:
        add_member(b, t, gen, c.reads);
        break;
      case Access::Atomic:
        add_member(b, t, gen, c.atomics);
        break;
    }
  }
}

void shared_load(const void* p, size_t bytes, const SharedVar* var) {
  ThreadState& t = require_thread("a shared-memory read");
  BlockState& b = *current_block_state();
  if (b.race_check)
    shadow_access(b, t, static_cast<const unsigned char*>(p), bytes, Access::Read, var);
}

void shared_store(const void* p, size_t bytes, const SharedVar* var) {
  ThreadState& t = require_thread("a shared-memory write");
  BlockState& b = *current_block_state();
  if (b.race_check)
    shadow_access(b, t, static_cast<const unsigned char*>(p), bytes, Access::Write, var);
}

void shared_atomic(const void* p, size_t bytes, const SharedVar* var) {
  ThreadState& t = require_thread("a shared-memory atomic");
  BlockState& b = *current_block_state();
  if (b.race_check)
    shadow_access(b, t, static_cast<const unsigned char*>(p), bytes, Access::Atomic, var);
}

const SharedVar* find_shared_var(BlockState& b, const ThreadState& t, const void* p, size_t bytes,
                                 size_t align, const char* op, const Site& site) {
  auto what = [&] { return std::string(op) + " (" + describe(site) + ")"; };
  const auto* c = static_cast<const unsigned char*>(p);
  const SharedArena& a = b.arena;
  const SharedVar* hit = nullptr;
  const SharedVar* before = nullptr;  // the variable that ends nearest below p
  auto consider = [&](const SharedVar& v) {
    if (c >= v.begin && c < v.end) hit = &v;
    if (v.end <= c && (!before || v.end > before->end)) before = &v;
  };
  if (a.dynamic.end > a.dynamic.begin) consider(a.dynamic);
  for (const SharedVar& v : a.vars) consider(v);
  if (!hit) {
    if (c < a.base || c >= a.base + a.used) {
      fail_for_thread(t, what() + ": address " + std::to_string(reinterpret_cast<uintptr_t>(p)) +
                             " is not in this block's shared memory");
    }
    if (before) {
      fail_for_thread(t, what() + ": out-of-bounds shared memory access " +
                             std::to_string(c - before->end) + " bytes past the end of '" +
                             before->name + "'" + declared_at(*before));
    }
    fail_for_thread(t, what() +
                           ": out-of-bounds shared memory access before the "
                           "first shared variable");
  }
  if (c + bytes > hit->end) {
    fail_for_thread(t, what() + ": out-of-bounds shared memory access: " + std::to_string(bytes) +
                           " bytes at " + describe_byte(*hit, c) + " run past the end of '" +
                           hit->name + "'" + declared_at(*hit));
  }
  if (reinterpret_cast<uintptr_t>(p) % align) {
    fail_for_thread(t, what() + ": " + describe_byte(*hit, c) + " is not " + std::to_string(align) +
                           "-byte aligned");
  }
  return hit;
}

void mark_async(BlockState& b, const ThreadState& t, unsigned char* p, size_t bytes, bool pending) {
  const size_t base = static_cast<size_t>(p - b.arena.base);
  for (size_t i = 0; i < bytes; ++i) {
    ShadowCell& c = b.arena.shadow[base + i];
    c.async_block = pending ? b.serial : 0;
    c.async_tid = pending ? static_cast<uint16_t>(t.linear + 1) : 0;
  }
}

void arena_check_guards(BlockState& b, const char* when, const Site& site) {
  const SharedArena& a = b.arena;
  auto name_of = [](const SharedVar& v) {
    return (v.decl ? "'" + std::string(v.name) + "'"
                   : "dynamic shared memory '" + std::string(v.name) + "'") +
           declared_at(v);
  };
  // The gap [from, to) between prev and next (either may be null) must still be poison.
  auto check = [&](const unsigned char* from, const unsigned char* to, const SharedVar* prev,
                   const SharedVar* next) {
    for (const unsigned char* q = from; q < to; ++q) {
      if (*q == T::kPoison) continue;
      const bool near_prev = prev && (!next || q - prev->end < next->begin - q);
      const std::string where =
          near_prev ? std::to_string(q - prev->end) + " bytes past the end of " + name_of(*prev)
          : next ? std::to_string(next->begin - q) + " bytes before the start of " + name_of(*next)
                 : std::string("outside every shared variable");
      fail_for_block(b, std::string("out-of-bounds shared memory write detected ") + when +
                            (site.file ? " (" + describe(site) + ")" : std::string()) +
                            ": a write landed " + where +
                            " (through an unchecked raw pointer; checked accesses name the "
                            "thread)");
    }
  };
  const SharedVar* prev = a.dynamic.end > a.dynamic.begin ? &a.dynamic : nullptr;
  const unsigned char* prev_end = a.dynamic.end;
  check(a.base, a.dynamic.begin, nullptr, prev ? prev : (a.vars.empty() ? nullptr : &a.vars[0]));
  for (const SharedVar& v : a.vars) {
    check(prev_end, v.begin, prev, &v);
    prev_end = v.end;
    prev = &v;
  }
  check(prev_end, a.base + a.used, prev, nullptr);
}

}  // namespace iris::emu::detail
