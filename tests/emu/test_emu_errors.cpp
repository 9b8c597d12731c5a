// Planted bugs: each must come back as an iris::Error that names the kernel
// (and the call sites where there are any), never as a hang, a crash or a
// silently plausible result.
#include <cmath>
#include <vector>

#include "kernels/emu/cuda_compat.h"
#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr const char* kBugFile = "bug_kernels.cu";

// Kernels g++ accepts and nvcc would reject at compile time (or that test the
// emulator's host-side guards), so they live here rather than in a .cu file.
__global__ void too_much_static_shared_kernel(float* out) {
  IRIS_SHARED(float, big, [12289]);  // 49156 bytes > 48 KiB
  big[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x];
}

__global__ void mismatched_collectives_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  int v = lane;
  if (lane == 0)
    v = __shfl_xor_sync(0x3u, v, 1);
  else if (lane == 1)
    v = static_cast<int>(__ballot_sync(0x3u, v > 0));
  out[lane] = v;
}

__global__ void one_bad_block_kernel(int* out) {
  IRIS_SHARED(int, buf, [64]);
  const int t = static_cast<int>(threadIdx.x);
  buf[t] = t;
  if (blockIdx.x != 7) __syncthreads();  // block 7 forgets the barrier
  out[blockIdx.x * 64 + t] = buf[(t + 1) % 64];
}

__global__ void atomic_vs_plain_write_kernel(int* out) {
  IRIS_SHARED(int, counter);
  if (threadIdx.x == 0) counter = 0;  // needs a __syncthreads before the atomics
  atomicAdd(&counter, 1);
  __syncthreads();
  out[threadIdx.x] = counter;
}

__global__ void trap_kernel(int* out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EmuErrors, EarlyReturnBeforeABarrier) {
  DeviceArray<int> out(32);
  std::string msg;
  EXPECT_TRUE(throws_error_with([&] { bug_early_exit_barrier(out.get()); },
                                {"early_exit_barrier_kernel", "divergent barrier", "__syncthreads",
                                 "exited without reaching it"},
                                &msg));
  EXPECT_EQ(sites_in(msg, kBugFile).size(), 1u) << msg;
}

TEST(EmuErrors, ThreadsAtTwoDifferentBarriers) {
  DeviceArray<int> out(64);
  std::string msg;
  EXPECT_TRUE(throws_error_with([&] { bug_divergent_barrier_sites(out.get()); },
                                {"divergent_barrier_sites_kernel", "divergent barrier"}, &msg));
  EXPECT_EQ(sites_in(msg, kBugFile).size(), 2u) << "both call sites: " << msg;
}

TEST(EmuErrors, MissingBarrierIsAReadAfterWriteRace) {
  const int n = 64;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = i;
  DeviceArray<int> din(in), dout(n);
  for (uint64_t seed : {1, 2, 3, 4}) {  // found whatever the interleaving
    ScopedConfig scoped(with_seed(seed));
    EXPECT_EMU_ERROR(bug_missing_barrier(din.get(), dout.get(), n), "missing_barrier_kernel",
                     "shared-memory race on 'buf'", "since the kernel started", kBugFile);
  }
}

TEST(EmuErrors, MissingBarrierGivesWrongResultsWithoutTheDetector) {
  const int n = 64;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = i;
  DeviceArray<int> din(in), dout(n);
  emu::Config c = emu::config();
  c.race_check = false;
  bool wrong = false;
  for (uint64_t seed : {1, 2, 3, 4}) {
    c.seed = seed;
    ScopedConfig scoped(c);
    bug_missing_barrier(din.get(), dout.get(), n);
    const std::vector<int> out = dout.host();
    for (int t = 0; t < n; ++t) wrong |= out[t] != in[(t + 1) % n];
  }
  EXPECT_TRUE(wrong) << "shuffled thread order should expose the race as poison reads";
}

TEST(EmuErrors, BufferReuseWithoutTrailingBarrierRaces) {
  // Depending on the interleaving the detector sees the overwrite first (write after
  // read) or the late read first (read after write); either names the same interval.
  DeviceArray<int> out(64);
  for (uint64_t seed : {1, 2, 3, 4}) {
    ScopedConfig scoped(with_seed(seed));
    EXPECT_EMU_ERROR(bug_write_after_read(out.get(), 64), "write_after_read_kernel",
                     "shared-memory race on 'buf'", "since the barrier at", kBugFile);
  }
}

TEST(EmuErrors, SharedAtomicsRaceWithPlainAccesses) {
  DeviceArray<int> out(64);
  for (uint64_t seed : {1, 2, 3, 4}) {
    ScopedConfig scoped(with_seed(seed));
    EXPECT_EMU_ERROR(IRIS_LAUNCH(atomic_vs_plain_write_kernel, 1, 64, 0, 0, out.get()),
                     "atomic_vs_plain_write_kernel", "shared-memory race on 'counter'",
                     "atomically update");
  }
}

TEST(EmuErrors, WarpSynchronousCodeWithoutSyncwarpRaces) {
  std::vector<int> in(64, 1);
  DeviceArray<int> din(in), dout(1);
  EXPECT_EMU_ERROR(bug_warp_lockstep(din.get(), dout.get()), "warp_lockstep_kernel",
                   "shared-memory race on 's'");
}

TEST(EmuErrors, SharedIndexOutOfBounds) {
  DeviceArray<int> out(33);
  EXPECT_EMU_ERROR(bug_shared_index_oob(out.get(), 33), "shared_index_oob_kernel",
                   "thread (32,0,0)", "out-of-bounds shared memory index 32",
                   "dimension of size 32 of 'buf'", kBugFile);
}

TEST(EmuErrors, RawPointerWritePastASharedArray) {
  DeviceArray<int> out(40);
  std::string msg;
  EXPECT_TRUE(
      throws_error_with([&] { bug_shared_raw_pointer_oob(out.get(), 40); },
                        {"shared_raw_pointer_oob_kernel", "out-of-bounds shared memory write",
                         "past the end of 'buf'", "at __syncthreads"},
                        &msg));
  EXPECT_EQ(sites_in(msg, kBugFile).size(), 2u) << "declaration and barrier: " << msg;
}

TEST(EmuErrors, SharedPointerPastTheEnd) {
  DeviceArray<float> out(32);
  EXPECT_EMU_ERROR(bug_shared_pointer_oob(out.get()), "shared_pointer_oob_kernel",
                   "thread (31,0,0)",
                   "out-of-bounds shared memory access: bytes [128, 132) of 'tile'",
                   "which has 128 bytes", kBugFile);
}

TEST(EmuErrors, MisalignedVectorAccess) {
  DeviceArray<float> out(8);
  EXPECT_EMU_ERROR(bug_misaligned_vector(out.get()), "misaligned_vector_kernel",
                   "misaligned shared memory access: 'tile'[", "is not 16-byte aligned");
}

TEST(EmuErrors, DynamicSharedMemoryOutOfBounds) {
  DeviceArray<int> out(16);
  EXPECT_EMU_ERROR(bug_dynamic_oob(out.get(), 16), "dynamic_oob_kernel",
                   "out-of-bounds shared memory access", "dynamic shared memory 'buf'",
                   "which has 64 bytes");
}

TEST(EmuErrors, ReadingBeforeTheCpAsyncWait) {
  std::vector<float> in(128, 1.0f);
  DeviceArray<float> din(in), dout(32);
  EXPECT_EMU_ERROR(bug_missing_cp_async_wait(din.get(), dout.get()), "missing_cp_async_wait_kernel",
                   "reads 'buf'", "cp.async", "missing cp_async_wait", kBugFile);
}

TEST(EmuErrors, ShuffleMaskNamesAnExitedLane) {
  DeviceArray<int> out(32);
  EXPECT_EMU_ERROR(bug_shuffle_exited_lane(out.get()), "shuffle_exited_lane_kernel",
                   "__shfl_xor_sync", "mask 0xffffffff", "lane 5", "has exited", kBugFile);
}

TEST(EmuErrors, HalfAWarpAtABarrierHalfAtAShuffle) {
  DeviceArray<int> out(32);
  std::string msg;
  EXPECT_TRUE(throws_error_with(
      [&] { bug_collective_vs_barrier(out.get()); },
      {"collective_vs_barrier_kernel", "deadlock", "__shfl_sync", "waits at __syncthreads"}, &msg));
  EXPECT_EQ(sites_in(msg, kBugFile).size(), 2u) << msg;
}

TEST(EmuErrors, MismatchedCollectivesDeadlock) {
  DeviceArray<int> out(2);
  std::string msg =
      error_of([&] { IRIS_LAUNCH(mismatched_collectives_kernel, 1, 2, 0, 0, out.get()); });
  EXPECT_NE(msg.find("mismatched_collectives_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("__ballot_sync"), std::string::npos) << msg;
  EXPECT_NE(msg.find("__shfl_xor_sync"), std::string::npos) << msg;
  EXPECT_EQ(sites_in(msg, "test_emu_errors.cpp").size(), 2u) << msg;
}

TEST(EmuErrors, ShuffleSourceOutsideTheMaskReadsPoison) {
  DeviceArray<int> dout(32);
  bug_shuffle_source_outside_mask(dout.get());
  const std::vector<int> out = dout.host();
  for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(out[lane], lane < 16 ? -1 : lane) << lane;
}

TEST(EmuErrors, ShuffleWidthMustBeAPowerOfTwo) {
  DeviceArray<int> out(32);
  EXPECT_EMU_ERROR(bug_shuffle_bad_width(out.get()), "shuffle_bad_width_kernel", "__shfl_down_sync",
                   "width 12");
}

TEST(EmuErrors, MaskMustIncludeTheCaller) {
  DeviceArray<int> out(32);
  EXPECT_EMU_ERROR(bug_mask_without_caller(out.get()), "mask_without_caller_kernel",
                   "__ballot_sync", "does not include the calling lane");
}

TEST(EmuErrors, DeviceCheckAndTrap) {
  DeviceArray<int> out(32);
  EXPECT_EMU_ERROR(bug_device_check(out.get(), 9), "device_check_kernel", "thread (9,0,0)",
                   "IRIS_DEVICE_CHECK(t != n)", "thread index must differ from n");
  EXPECT_EMU_ERROR(IRIS_LAUNCH(trap_kernel, 1, 8, 0, 0, out.get()), "trap_kernel", "thread (3,0,0)",
                   "__trap()");
}

TEST(EmuErrors, LdmatrixRowMustBeAligned) {
  std::vector<uint16_t> tile(32 * 8, 1);
  DeviceArray<uint16_t> dtile(tile);
  DeviceArray<uint32_t> out(32);
  EXPECT_EMU_ERROR(bug_ldmatrix_misaligned(dtile.get(), out.get()), "ldmatrix_misaligned_kernel",
                   "ldmatrix_x1", "16-byte aligned", "thread (3,0,0)");
}

TEST(EmuErrors, StaticSharedMemoryLimit) {
  DeviceArray<float> out(32);
  EXPECT_EMU_ERROR(IRIS_LAUNCH(too_much_static_shared_kernel, 1, 32, 0, 0, out.get()),
                   "too_much_static_shared_kernel", "static shared memory exceeds 49152");
}

TEST(EmuErrors, ABugInOneOfManyParallelBlocksNamesThatBlock) {
  DeviceArray<int> out(40 * 64);
  EXPECT_EMU_ERROR(IRIS_LAUNCH(one_bad_block_kernel, 40, 64, 0, 0, out.get()),
                   "one_bad_block_kernel", "block (7,0,0)", "shared-memory race on 'buf'");
  // The emulator is usable again afterwards.
  DeviceArray<int> good(96);
  shared_scalar(good.get(), 96, 5);
  for (int v : good.host()) EXPECT_EQ(v, 5);
}

TEST(EmuErrors, DeviceIntrinsicsOutsideAKernel) {
  EXPECT_EMU_ERROR(__syncthreads(), "__syncthreads", "outside an emulated kernel");
  EXPECT_EMU_ERROR(__shfl_sync(0xffffffffu, 1, 0), "__shfl_sync", "outside an emulated kernel");
}

}  // namespace
}  // namespace iris::emu_test
