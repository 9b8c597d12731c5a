#pragma once
// The emulated CUDA device, host side: configuration, device memory (plain host
// memory, registered so that copies are checked), a stream stub and the kernel
// launch that runs a grid block by block, each block's threads as fibers.
#include <cstddef>
#include <cstdint>
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
// New allocations are poison-filled (0xFF bytes: NaN floats, -1 integers).
void* malloc(size_t bytes);
void free(void* ptr);  // ptr must come from emu::malloc (or be null)
enum class CopyKind { HostToHost, HostToDevice, DeviceToHost, DeviceToDevice, Default };
// Device ranges must lie inside one live allocation; Default infers each side.
void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind = CopyKind::Default);
void memset(void* dst, int value, size_t bytes);
void synchronize();
bool is_device_pointer(const void* ptr);
size_t device_bytes_in_use();

// Streams exist so host code reads the same as on CUDA; every launch and copy is synchronous.
struct StreamImpl;
using Stream = StreamImpl*;
Stream stream_create();
void stream_destroy(Stream s);
void stream_synchronize(Stream s);
void memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s);

namespace detail {

struct KernelCall {
  const char* name;
  void (*invoke)(const void* packed);  // calls the kernel with its packed arguments
  const void* packed;
};
void run_grid(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              Stream stream);

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
  const Packed packed{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  const detail::KernelCall call{name,
                                [](const void* p) {
                                  const Packed& pk = *static_cast<const Packed*>(p);
                                  std::apply(pk.kernel, pk.args);
                                },
                                &packed};
  detail::run_grid(call, grid, block, dynamic_shared_bytes, stream);
}

}  // namespace iris::emu
