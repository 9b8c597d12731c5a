// The device calls of the CUDA backend, once per build: the CUDA runtime (nvcc) or the
// SIMT emulator (g++). Everything above them (allocator, staging, streams) is shared.
#include "core/error.h"
#include "kernels/cuda/device_api.h"
#include "kernels/emu/cuda_compat.h"

#if !IRIS_EMU
#include "kernels/cuda/launch_stream.h"
#endif

namespace iris::IRIS_KERNEL_NS::device {

#if IRIS_EMU

namespace rt = ::iris::emu;
namespace {
rt::Stream S(void* s) { return static_cast<rt::Stream>(s); }
rt::Event E(void* e) { return static_cast<rt::Event>(e); }
}  // namespace

int count() { return 1; }
void* malloc(size_t bytes, int) { return rt::malloc(bytes); }
void free(void* p, int) { rt::free(p); }
void* host_alloc(size_t bytes) { return rt::host_alloc(bytes); }
void host_free(void* p) { rt::host_free(p); }
void copy_from_pinned_async(void* dst, const void* src, size_t n, int, void* stream) {
  rt::memcpy_async(dst, src, n, rt::CopyKind::HostToDevice, S(stream));
}
void copy_to_host_sync(void* dst, const void* src, size_t n, int, void* stream) {
  rt::memcpy_async(dst, src, n, rt::CopyKind::DeviceToHost, S(stream));
  rt::stream_synchronize(S(stream));
}
void copy_within_async(void* dst, const void* src, size_t n, int, void* stream) {
  rt::memcpy_async(dst, src, n, rt::CopyKind::DeviceToDevice, S(stream));
}
void synchronize(int) { rt::synchronize(); }
const char* name() { return "cuda (emulated)"; }

void* stream_create(int) { return rt::stream_create(); }
void stream_destroy(int, void* s) { rt::stream_destroy(S(s)); }
void stream_synchronize(int, void* s) { rt::stream_synchronize(S(s)); }
bool stream_query(int, void* s) { return rt::stream_query(S(s)); }
void stream_wait_event(int, void* s, void* e) { rt::stream_wait_event(S(s), E(e)); }
void set_launch_stream(int, void* s) { rt::set_current_stream(S(s)); }

void* event_create(int, bool) { return rt::event_create(); }
void event_destroy(int, void* e) { rt::event_destroy(E(e)); }
void event_record(int, void* e, void* s) { rt::event_record(E(e), S(s)); }
void event_synchronize(int, void* e) { rt::event_synchronize(E(e)); }
bool event_query(int, void* e) { return rt::event_query(E(e)); }
bool event_completed(int, void* e) { return rt::event_completed(E(e)); }
float event_elapsed_ms(int, void* start, void* end) {
  return rt::event_elapsed_ms(E(start), E(end));
}

#else

namespace {
constexpr int kMaxDevices = 16;
thread_local cudaStream_t t_launch_stream[kMaxDevices] = {};

cudaStream_t S(void* s) { return static_cast<cudaStream_t>(s); }
cudaEvent_t E(void* e) { return static_cast<cudaEvent_t>(e); }
void use(int device) { IRIS_CUDA_CHECK(cudaSetDevice(device)); }
// cudaSuccess: true; cudaErrorNotReady: false (and cleared); anything else throws.
bool ready(cudaError_t err, const char* call, int line) {
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  if (err != cudaSuccess)
    IRIS_FAIL(call, " failed at ", __FILE__, ":", line, ": ", cudaGetErrorName(err), " (",
              cudaGetErrorString(err), ")");
  return true;
}
}  // namespace

int count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}
void* malloc(size_t bytes, int device) {
  use(device);
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return nullptr;
  }
  IRIS_CUDA_CHECK(err);
  return p;
}
void free(void* p, int device) {
  use(device);
  IRIS_CUDA_CHECK(cudaFree(p));
}
void* host_alloc(size_t bytes) {
  void* p = nullptr;
  IRIS_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
  return p;
}
void host_free(void* p) { IRIS_CUDA_CHECK(cudaFreeHost(p)); }
void copy_from_pinned_async(void* dst, const void* src, size_t n, int device, void* stream) {
  use(device);
  IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, S(stream)));
}
void copy_to_host_sync(void* dst, const void* src, size_t n, int device, void* stream) {
  use(device);
  IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, S(stream)));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(S(stream)));
}
void copy_within_async(void* dst, const void* src, size_t n, int device, void* stream) {
  use(device);
  IRIS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, S(stream)));
}
void synchronize(int device) {
  use(device);
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
}
const char* name() { return "cuda"; }

// Created streams block on the legacy default stream, so work issued there (a launch that
// names no stream, before the launch macro resolves the current stream) stays ordered.
void* stream_create(int device) {
  use(device);
  cudaStream_t s = nullptr;
  IRIS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault));
  return s;
}
void stream_destroy(int device, void* s) {
  use(device);
  IRIS_CUDA_CHECK(cudaStreamDestroy(S(s)));
}
void stream_synchronize(int device, void* s) {
  use(device);
  IRIS_CUDA_CHECK(cudaStreamSynchronize(S(s)));
}
bool stream_query(int device, void* s) {
  use(device);
  return ready(cudaStreamQuery(S(s)), "cudaStreamQuery(s)", __LINE__);
}
void stream_wait_event(int device, void* s, void* e) {
  use(device);
  IRIS_CUDA_CHECK(cudaStreamWaitEvent(S(s), E(e), 0));
}
void set_launch_stream(int device, void* s) {
  IRIS_CHECK(device >= 0 && device < kMaxDevices, "cuda: no device ", device);
  t_launch_stream[device] = S(s);
}

void* event_create(int device, bool timing) {
  use(device);
  cudaEvent_t e = nullptr;
  IRIS_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}
void event_destroy(int device, void* e) {
  use(device);
  IRIS_CUDA_CHECK(cudaEventDestroy(E(e)));
}
void event_record(int device, void* e, void* s) {
  use(device);
  IRIS_CUDA_CHECK(cudaEventRecord(E(e), S(s)));
}
void event_synchronize(int, void* e) { IRIS_CUDA_CHECK(cudaEventSynchronize(E(e))); }
bool event_query(int, void* e) {
  return ready(cudaEventQuery(E(e)), "cudaEventQuery(e)", __LINE__);
}
bool event_completed(int device, void* e) { return event_query(device, e); }
float event_elapsed_ms(int, void* start, void* end) {
  float ms = 0;
  IRIS_CUDA_CHECK(cudaEventElapsedTime(&ms, E(start), E(end)));
  return ms;
}

#endif

}  // namespace iris::IRIS_KERNEL_NS::device

#if !IRIS_EMU
namespace iris::cuda {

cudaStream_t launch_stream(cudaStream_t requested) {
  if (requested) return requested;
  int d = 0;
  IRIS_CUDA_CHECK(cudaGetDevice(&d));
  return d >= 0 && d < device::kMaxDevices ? device::t_launch_stream[d] : nullptr;
}

}  // namespace iris::cuda
#endif
