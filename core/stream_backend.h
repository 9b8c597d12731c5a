#pragma once
// What a CUDA backend (the real runtime or the emulator) provides to core/stream.h; the
// backend registers itself at load time, the emulated one last (like the allocator).
// Handles are the runtime's own (cudaStream_t, cudaEvent_t or the emulator's); nullptr is
// the default stream.
#include <cstdint>

namespace iris::cuda {

class StreamBackend {
 public:
  using Handle = void*;
  virtual ~StreamBackend() = default;
  virtual const char* name() = 0;
  virtual int device_count() = 0;
  // `id` names the stream in the allocator's per-stream free lists.
  virtual Handle stream_create(int device, uint64_t id) = 0;
  virtual void stream_destroy(int device, Handle s, uint64_t id) = 0;
  virtual void stream_synchronize(int device, Handle s) = 0;
  virtual bool stream_query(int device, Handle s) = 0;
  virtual void stream_wait_event(int device, Handle s, Handle e) = 0;
  // The stream this host thread's launches, copies and allocations on `device` go to.
  virtual void set_current_stream(int device, Handle s, uint64_t id) = 0;
  virtual Handle event_create(int device) = 0;
  virtual void event_destroy(int device, Handle e) = 0;
  virtual void event_record(int device, Handle e, Handle s) = 0;
  virtual void event_synchronize(int device, Handle e) = 0;
  virtual bool event_query(int device, Handle e) = 0;
  virtual float event_elapsed_ms(int device, Handle start, Handle end) = 0;
  virtual void device_synchronize(int device) = 0;
  virtual void record_stream(int device, void* block, uint64_t stream_id) = 0;
};

void register_stream_backend(StreamBackend* backend);
// Throws iris::Error when no CUDA backend is linked.
StreamBackend& stream_backend();

}  // namespace iris::cuda
