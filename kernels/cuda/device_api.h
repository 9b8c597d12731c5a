#pragma once
// What the CUDA backend needs from a device, in both builds of a .cu source: the CUDA
// runtime with nvcc, the SIMT emulator with g++ (device_api.cu). Streams and events are
// opaque handles (cudaStream_t / cudaEvent_t or the emulator's); nullptr is the default
// stream. Every call checks its result and throws iris::Error on failure.
#include <cstddef>

#include "kernels/emu/cuda_compat.h"  // IRIS_KERNEL_NS

namespace iris::IRIS_KERNEL_NS::device {

int count();                             // visible devices (the emulator shows one)
void* malloc(size_t bytes, int device);  // nullptr when out of memory
void free(void* p, int device);
void* host_alloc(size_t bytes);  // page-locked (pinned) host memory
void host_free(void* p);
// Queued on `stream`; `src` must be pinned so that the copy is asynchronous.
void copy_from_pinned_async(void* dst, const void* src, size_t n, int device, void* stream);
// Queued on `stream`, then waits for the stream: returns with the bytes in `dst`.
void copy_to_host_sync(void* dst, const void* src, size_t n, int device, void* stream);
void copy_within_async(void* dst, const void* src, size_t n, int device, void* stream);
void synchronize(int device);
const char* name();  // "cuda" or "cuda (emulated)", for messages

void* stream_create(int device);
void stream_destroy(int device, void* stream);  // its queued work still runs
void stream_synchronize(int device, void* stream);
bool stream_query(int device, void* stream);
void stream_wait_event(int device, void* stream, void* event);
// The stream that launches given no stream go to, for this host thread and device.
void set_launch_stream(int device, void* stream);

void* event_create(int device, bool timing);
void event_destroy(int device, void* event);
void event_record(int device, void* event, void* stream);
void event_synchronize(int device, void* event);
bool event_query(int device, void* event);      // the emulator's polls progress
bool event_completed(int device, void* event);  // runs nothing, even on the emulator
float event_elapsed_ms(int device, void* start, void* end);

}  // namespace iris::IRIS_KERNEL_NS::device
