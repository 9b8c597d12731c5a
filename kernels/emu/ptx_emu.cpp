// The emulated twins of iris::ptx: mma.sync and ldmatrix as warp collectives
// that rebuild the matrices from every lane's fragment (PTX ISA layouts, see
// ptx.h), and cp.async as a per-thread queue whose data lands at the wait
// (until then the destination holds poison and reading it is an error).
#include <cstring>
#include <string>

#include "kernels/emu/block_state.h"
#include "kernels/emu/ptx.h"

namespace iris::ptx {
namespace {

using iris::emu::detail::BlockState;
using iris::emu::detail::CollectiveOp;
using iris::emu::detail::CollectiveRequest;
using iris::emu::detail::EmuTraits;
using iris::emu::detail::PendingCopy;
using iris::emu::detail::Site;
using iris::emu::detail::ThreadState;
using iris::emu::detail::WarpCall;
namespace detail = iris::emu::detail;

constexpr uint32_t kFullMask = 0xffffffffu;

struct MmaOperands {
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

float half_to_float(uint16_t h, bool bf16) {
  return bf16 ? detail::bf16_bits_to_float(h) : detail::half_bits_to_float(h);
}

uint16_t half_of(uint32_t reg, int hi) { return static_cast<uint16_t>(hi ? reg >> 16 : reg); }

// D = A * B + C for one m16n8k16 tile, products and sums in fp32 in k order.
template <bool kBf16>
void complete_mma(WarpCall& call) {
  float A[16][16], B[16][8], C[16][8];
  for (uint32_t lane = 0; lane < 32; ++lane) {
    const auto& ops = *static_cast<const MmaOperands*>(detail::request_of(*call.lanes[lane]).in);
    const uint32_t g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) {
      const uint32_t row = g + ((i & 1) ? 8 : 0);
      const uint32_t col = 2 * t + ((i & 2) ? 8 : 0);
      A[row][col] = half_to_float(half_of(ops.a[i], 0), kBf16);
      A[row][col + 1] = half_to_float(half_of(ops.a[i], 1), kBf16);
    }
    for (int i = 0; i < 2; ++i) {
      const uint32_t k = 2 * t + (i ? 8 : 0);
      B[k][g] = half_to_float(half_of(ops.b[i], 0), kBf16);
      B[k + 1][g] = half_to_float(half_of(ops.b[i], 1), kBf16);
    }
    for (int i = 0; i < 4; ++i) C[g + ((i & 2) ? 8 : 0)][2 * t + (i & 1)] = ops.c[i];
  }
  for (uint32_t lane = 0; lane < 32; ++lane) {
    const CollectiveRequest& r = detail::request_of(*call.lanes[lane]);
    const uint32_t g = lane >> 2, t = lane & 3;
    float d[4];
    for (int i = 0; i < 4; ++i) {
      const uint32_t row = g + ((i & 2) ? 8 : 0), col = 2 * t + (i & 1);
      float acc = 0.0f;
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      d[i] = acc + C[row][col];
    }
    std::memcpy(r.out, d, sizeof(d));
  }
}

// ldmatrix: matrix i's rows come from lanes 8i..8i+7 (16 bytes each).
template <int kNum, bool kTrans>
void complete_ldmatrix(WarpCall& call) {
  BlockState& b = *call.block;
  uint16_t M[4][8][8];
  for (int i = 0; i < kNum; ++i) {
    for (int row = 0; row < 8; ++row) {
      ThreadState& src = *call.lanes[8 * i + row];
      const CollectiveRequest& r = detail::request_of(src);
      const auto* p = static_cast<const unsigned char*>(r.in);
      const detail::SharedVar* var = detail::find_shared_var(b, src, p, 16, 16, r.op->name, r.site);
      if (b.race_check) detail::shadow_access(b, src, p, 16, detail::Access::Read, var);
      std::memcpy(M[i][row], p, 16);
    }
  }
  for (uint32_t lane = 0; lane < 32; ++lane) {
    const CollectiveRequest& r = detail::request_of(*call.lanes[lane]);
    const uint32_t q = lane >> 2, c = 2 * (lane & 3);
    uint32_t regs[4];
    for (int i = 0; i < kNum; ++i) {
      const uint16_t lo = kTrans ? M[i][c][q] : M[i][q][c];
      const uint16_t hi = kTrans ? M[i][c + 1][q] : M[i][q][c + 1];
      regs[i] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
    }
    std::memcpy(r.out, regs, sizeof(uint32_t) * kNum);
  }
}

const CollectiveOp kMmaBf16{"mma_m16n8k16_bf16", complete_mma<true>};
const CollectiveOp kMmaF16{"mma_m16n8k16_f16", complete_mma<false>};
const CollectiveOp kLd1{"ldmatrix_x1", complete_ldmatrix<1, false>};
const CollectiveOp kLd2{"ldmatrix_x2", complete_ldmatrix<2, false>};
const CollectiveOp kLd4{"ldmatrix_x4", complete_ldmatrix<4, false>};
const CollectiveOp kLd1T{"ldmatrix_x1_trans", complete_ldmatrix<1, true>};
const CollectiveOp kLd2T{"ldmatrix_x2_trans", complete_ldmatrix<2, true>};
const CollectiveOp kLd4T{"ldmatrix_x4_trans", complete_ldmatrix<4, true>};

// .aligned warp-wide instructions: all 32 lanes, converged.
void require_full_warp(const CollectiveOp& op, const Site& site) {
  ThreadState& t = detail::require_thread(op.name);
  const BlockState& b = *detail::current_block_state();
  if ((t.warp + 1) * EmuTraits::kWarpSize > b.nthreads) {
    detail::fail_for_thread(t, std::string(op.name) + " (" + detail::describe(site) +
                                   ") needs a full warp; this block's last warp is partial");
  }
}

void mma(const CollectiveOp& op, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
         const float (&c)[4], const std::source_location& loc) {
  const Site site = detail::site_of(loc);
  require_full_warp(op, site);
  const MmaOperands ops{a, b, c};
  float out[4];
  detail::warp_collective(CollectiveRequest{&op, kFullMask, sizeof(ops), &ops, out, 0, 0, site});
  std::memcpy(d, out, sizeof(out));
}

template <int kNum>
void ldmatrix(const CollectiveOp& op, uint32_t (&r)[kNum], const void* smem_row,
              const std::source_location& loc) {
  const Site site = detail::site_of(loc);
  require_full_warp(op, site);
  detail::warp_collective(CollectiveRequest{&op, kFullMask, 0, smem_row, r, 0, 0, site});
}

void cp_async(void* dst, const void* src, uint32_t bytes, int src_bytes,
              const std::source_location& loc) {
  ThreadState& t = detail::require_thread("cp.async");
  BlockState& b = *detail::current_block_state();
  const Site site = detail::site_of(loc);
  const char* op = bytes == 16 ? "cp_async_16" : bytes == 8 ? "cp_async_8" : "cp_async_4";
  auto what = [&] { return std::string(op) + " (" + detail::describe(site) + ")"; };
  if (src_bytes < 0 || src_bytes > static_cast<int>(bytes)) {
    detail::fail_for_thread(t, what() + ": src_bytes " + std::to_string(src_bytes) +
                                   " is outside [0, " + std::to_string(bytes) + "]");
  }
  if (reinterpret_cast<uintptr_t>(src) % bytes) {
    detail::fail_for_thread(
        t, what() + ": global source is not " + std::to_string(bytes) + "-byte aligned");
  }
  auto* d = static_cast<unsigned char*>(dst);
  const detail::SharedVar* var = detail::find_shared_var(b, t, d, bytes, bytes, op, site);
  PendingCopy pc{d, bytes, {}, site};
  if (src_bytes > 0) std::memcpy(pc.data, src, static_cast<size_t>(src_bytes));
  if (b.race_check) {
    detail::shadow_access(b, t, d, bytes, detail::Access::Write, var);
    detail::mark_async(b, t, d, bytes, true);
  }
  std::memset(d, EmuTraits::kPoison, bytes);  // until the wait, the destination holds poison
  t.uncommitted.push_back(pc);
}

void land(BlockState& b, ThreadState& t, const std::vector<PendingCopy>& copies) {
  for (const PendingCopy& c : copies) {
    if (b.race_check) {
      detail::mark_async(b, t, c.dst, c.bytes, false);
      detail::shadow_access(b, t, c.dst, c.bytes, detail::Access::Write,
                            detail::find_shared_var(b, t, c.dst, c.bytes, 1, "cp.async", c.site));
    }
    std::memcpy(c.dst, c.data, c.bytes);
  }
}

}  // namespace

void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                       const float (&c)[4], Loc loc) {
  mma(kMmaBf16, d, a, b, c, loc);
}
void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                      const float (&c)[4], Loc loc) {
  mma(kMmaF16, d, a, b, c, loc);
}

void ldmatrix_x1(uint32_t (&r)[1], const void* p, Loc loc) { ldmatrix(kLd1, r, p, loc); }
void ldmatrix_x2(uint32_t (&r)[2], const void* p, Loc loc) { ldmatrix(kLd2, r, p, loc); }
void ldmatrix_x4(uint32_t (&r)[4], const void* p, Loc loc) { ldmatrix(kLd4, r, p, loc); }
void ldmatrix_x1_trans(uint32_t (&r)[1], const void* p, Loc loc) { ldmatrix(kLd1T, r, p, loc); }
void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p, Loc loc) { ldmatrix(kLd2T, r, p, loc); }
void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p, Loc loc) { ldmatrix(kLd4T, r, p, loc); }

void cp_async_16(void* dst, const void* src, Loc loc) { cp_async(dst, src, 16, 16, loc); }
void cp_async_16_zfill(void* dst, const void* src, int src_bytes, Loc loc) {
  cp_async(dst, src, 16, src_bytes, loc);
}
void cp_async_8(void* dst, const void* src, Loc loc) { cp_async(dst, src, 8, 8, loc); }
void cp_async_4(void* dst, const void* src, Loc loc) { cp_async(dst, src, 4, 4, loc); }

void cp_async_commit(Loc) {
  ThreadState& t = detail::require_thread("cp_async_commit");
  t.committed.push_back(std::move(t.uncommitted));
  t.uncommitted.clear();
}

void cp_async_wait_groups(int n, Loc) {
  ThreadState& t = detail::require_thread("cp_async_wait");
  BlockState& b = *detail::current_block_state();
  while (t.committed.size() > static_cast<size_t>(n)) {
    land(b, t, t.committed.front());
    t.committed.pop_front();
  }
}

void cp_async_wait_all(Loc loc) {
  cp_async_commit(loc);
  cp_async_wait_groups(0, loc);
}

}  // namespace iris::ptx
