#pragma once
// Internal: runs one block of a grid on the calling OS thread (runtime.cpp
// hands blocks to workers; scheduler.cpp owns the fibers).
#include <cstddef>

#include "kernels/emu/runtime.h"

namespace iris::emu::detail {

void run_block(const KernelCall& call, uint3 block_idx, dim3 grid, dim3 block, size_t dynamic_bytes,
               const Config& cfg);
// True while an emulated thread runs on this OS thread.
bool inside_kernel();

}  // namespace iris::emu::detail
