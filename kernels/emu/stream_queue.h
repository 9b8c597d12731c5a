#pragma once
// Internal: the emulator's stream queues (streams.cpp) as seen by the rest of the runtime
// (runtime.cpp): the legacy stream's implicit synchronisation and deferred submission.
#include <functional>

#include "kernels/emu/runtime.h"

namespace iris::emu::detail {

// Runs every queued operation of every created stream, newest stream first.
void run_all_pending();
// Queues `op` on a created stream; for nullptr (the legacy stream) runs everything pending,
// then `op`, at once.
void submit(Stream s, std::function<void()> op);
// Runs the queued work of one created stream (nullptr: every stream).
void run_stream(Stream s);

// Checks a copy's pointers against the device allocations (and the kind, if given); sets
// whether each side is device memory.
void check_copy(void* dst, const void* src, size_t bytes, CopyKind kind, bool* dst_device,
                bool* src_device);

}  // namespace iris::emu::detail
