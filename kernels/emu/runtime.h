#pragma once
// The emulated CUDA device, host side: configuration, device memory (plain host
// memory, registered so that copies are checked), pinned host memory, streams that
// defer their work and events, and the kernel launch that runs a grid block by
// block, each block's threads as fibers.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emu/cuda_types.h"

namespace iris::emu {

struct Config {
  uint64_t seed = 1;               // IRIS_EMU_SEED: block order and thread interleaving
  bool race_check = true;          // IRIS_EMU_RACECHECK=0 turns the shared-memory detector off
  bool parallel_blocks = true;     // IRIS_EMU_SERIAL=1 runs all blocks on the calling thread
  size_t stack_bytes = 128 << 10;  // IRIS_EMU_STACK_KB: per emulated thread, plus a guard page
};

// The active configuration (read from the environment on first use).
const Config& config();
// Replaces it (tests); must not be called while a kernel runs.
void set_config(const Config& c);

// ---- device memory: cudaMalloc/cudaFree/cudaMemcpy/cudaMemset equivalents ----
// New allocations are poison-filled (0xFF bytes: NaN floats, -1 integers). free, memcpy,
// memset and synchronize are synchronous, as in CUDA: they first run all pending work.
void* malloc(size_t bytes);
void free(void* ptr);  // ptr must come from emu::malloc (or be null)
enum class CopyKind { HostToHost, HostToDevice, DeviceToHost, DeviceToDevice, Default };
// Device ranges must lie inside one live allocation; Default infers each side.
void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind = CopyKind::Default);
void memset(void* dst, int value, size_t bytes);
void synchronize();
bool is_device_pointer(const void* ptr);
size_t device_bytes_in_use();
// Page-locked host memory (cudaHostAlloc/cudaFreeHost): the only host memory that
// memcpy_async leaves to the stream; host_free waits for all pending work first.
void* host_alloc(size_t bytes);
void host_free(void* ptr);
bool is_pinned_pointer(const void* ptr);

// ---- streams and events (what the emulator guarantees) ----
// nullptr is the legacy default stream: each operation on it first runs every pending
// operation of every stream, then runs at once (so code that never creates a stream behaves
// as before: launches are synchronous and errors surface from IRIS_LAUNCH).
// A created stream defers its work: launches, asynchronous copies and event records queue
// in issue order and run only when the host waits for them (stream_synchronize,
// event_synchronize, synchronize, a synchronous copy, a legacy-stream operation) or polls
// (stream_query/event_query run one queued operation per call, so polling loops end), or
// when a stream that waits on an event (stream_wait_event) reaches that wait, which first
// runs the recorded stream up to the event. Hence, on the emulator,
//   - a kernel on stream B that reads what stream A wrote without an event wait sees the
//     old contents (A's work has not run), never A's result by luck;
//   - device or pinned host memory read by the host before a synchronisation shows the
//     state before the queued work; host memory a queued copy reads is read when it runs;
//   - a device-wide synchronize runs the streams newest first, so work correct only in
//     creation order shows as wrong.
// memcpy_async follows CUDA for pageable host memory: host-to-device first runs the stream's
// pending work and reads the source at once, device-to-host runs the stream to completion
// and returns with the copy done; only pinned host memory (host_alloc) is left queued.
// A queued operation that fails (a kernel error) throws from the call that ran it; the rest
// of that stream's queue is dropped. No two operations ever run at once (no overlap).
struct StreamImpl;
using Stream = StreamImpl*;
struct EventImpl;
using Event = EventImpl*;
Stream stream_create();
void stream_destroy(Stream s);  // runs its pending work first
void stream_synchronize(Stream s);
bool stream_query(Stream s);  // true when all its work has run (see above: polls progress)
void stream_wait_event(Stream s, Event e);  // s's later work waits for e's last record
void memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s);
// The stream a launch given nullptr goes to (per host thread; nullptr: the legacy stream).
void set_current_stream(Stream s);
Stream current_stream();
// Operations queued on created streams and not yet run (tests).
size_t pending_operations();

Event event_create();
void event_destroy(Event e);
void event_record(Event e, Stream s);
void event_synchronize(Event e);      // a never-recorded event is complete, as in CUDA
bool event_query(Event e);            // polls progress, like stream_query
bool event_completed(Event e);        // the same answer without running anything
float event_elapsed_ms(Event start, Event end);  // both complete; host time between them

namespace detail {

struct KernelCall {
  const char* name;
  void (*invoke)(const void* packed);  // calls the kernel with its packed arguments
  const void* packed;
};
// Checks the launch shape at once (as cudaGetLastError would), then runs the grid on `stream`
// (nullptr: the current stream) now or when the stream gets to it; `keep` owns `call.packed`.
void submit_grid(const KernelCall& call, std::shared_ptr<const void> keep, dim3 grid, dim3 block,
                 size_t dynamic_shared_bytes, Stream stream);

}  // namespace detail

// IRIS_LAUNCH's emulated half: arguments convert to the kernel's parameter types once, as
// a CUDA launch does; then every emulated thread calls the kernel with its own copy.
template <class... Params, class... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block,
            size_t dynamic_shared_bytes, Stream stream, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "IRIS_LAUNCH: the number of arguments does not match the kernel");
  struct Packed {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> args;
  };
  auto packed = std::make_shared<const Packed>(
      Packed{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)});
  const detail::KernelCall call{name,
                                [](const void* p) {
                                  const Packed& pk = *static_cast<const Packed*>(p);
                                  std::apply(pk.kernel, pk.args);
                                },
                                packed.get()};
  detail::submit_grid(call, std::move(packed), grid, block, dynamic_shared_bytes, stream);
}

}  // namespace iris::emu
