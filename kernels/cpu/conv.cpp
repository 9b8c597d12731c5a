// CPU 2-D convolution as GEMM over a column matrix (im2col / col2im).
//
// The output rows (n, oh) of the batch are cut into tiles whose column matrix
// [Cin/groups * kH * kW, rows * OW] fits a per-thread budget; a tile is either a run of
// whole images or part of one image. Within one image the GEMM reads and writes the NCHW
// tensors in place (leading dimension OH * OW); a multi-image tile goes through a scratch
// matrix. Threads take disjoint runs of images (or of groups, for a small batch), so
// col2im never races; with neither to split, the GEMM threads itself.
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loops.h"

namespace iris::kernels {

IRIS_DEFINE_KERNEL_TABLE(conv2d_forward)
IRIS_DEFINE_KERNEL_TABLE(conv2d_backward_data)
IRIS_DEFINE_KERNEL_TABLE(conv2d_backward_weight)

}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct ConvTraits {
  // Column matrix (and output scratch) per thread, within a 2 MiB L2: of 256 KiB .. 4 MiB,
  // 1 MiB ran the cnn-rnn layers fastest (bench_conv, all three passes).
  static constexpr int64_t kColumnBytes = int64_t(1) << 20;
  // im2col / col2im work per parallel chunk when the GEMM, not the batch, is threaded.
  static constexpr int64_t kCopyGrain = int64_t(1) << 14;
  // Threads take images only when each gets this many output columns (or a full tile);
  // below that the per-thread GEMMs are too narrow and the weights are packed too often.
  static constexpr int64_t kMinColumnsPerThread = 512;
};
static_assert(ConvTraits::kColumnBytes >= 64 * 1024 && ConvTraits::kCopyGrain > 0 &&
              ConvTraits::kMinColumnsPerThread > 0);

struct ValidCols {
  int64_t lo, hi, offset;
};

struct Geometry {
  int64_t N, Cin, H, W, Cout, kH, kW, OH, OW;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t G, Cin_g, Cout_g;
  int64_t K;                    // rows of the column matrix: Cin_g * kH * kW
  int64_t P;                    // output pixels per channel: OH * OW
  bool pointwise;               // 1x1, stride 1, no padding: the input is its own column matrix
  std::vector<ValidCols> cols;  // per kernel column kw

  Geometry(const Tensor& input, const Tensor& weight, const Shape& out_shape,
           const kernels::Conv2dParams& p)
      : N(input.size(0)),
        Cin(input.size(1)),
        H(input.size(2)),
        W(input.size(3)),
        Cout(weight.size(0)),
        kH(weight.size(2)),
        kW(weight.size(3)),
        OH(out_shape[2]),
        OW(out_shape[3]),
        sh(p.stride_h),
        sw(p.stride_w),
        ph(p.pad_h),
        pw(p.pad_w),
        dh(p.dilation_h),
        dw(p.dilation_w),
        G(p.groups),
        Cin_g(Cin / G),
        Cout_g(Cout / G),
        K(Cin_g * kH * kW),
        P(OH * OW),
        pointwise(kH == 1 && kW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0) {
    for (int64_t kw = 0; kw < kW; ++kw) cols.push_back(valid_cols(kw));
  }

 private:
  // Output columns [lo, hi) of kernel column kw read input columns ow * sw + offset inside
  // [0, W); the others read the zero padding.
  ValidCols valid_cols(int64_t kw) const {
    const int64_t off = kw * dw - pw;
    int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    int64_t hi = W - off <= 0 ? 0 : (W - off + sw - 1) / sw;
    lo = std::min(lo, OW);
    hi = std::clamp(hi, lo, OW);
    return {lo, hi, off};
  }
};

// Which images and groups one thread handles.
struct Part {
  int64_t n0, n1, g0, g1;
};

// Splits the work over images when the batch allows, else over groups, else not at all
// (then the GEMM and the column copies thread themselves).
struct Partition {
  enum Kind { kImages, kGroups, kSerial } kind;
  int64_t count;

  Partition(const Geometry& g, int64_t tile_rows) {
    const int64_t nt = iris::num_threads();
    const int64_t columns_per_thread = g.N / std::max<int64_t>(nt, 1) * g.P;
    const bool wide_enough =
        columns_per_thread >= std::min(tile_rows * g.OW, ConvTraits::kMinColumnsPerThread);
    if (nt > 1 && g.N >= nt && wide_enough) {
      kind = kImages, count = nt;
    } else if (nt > 1 && g.G >= nt) {
      kind = kGroups, count = nt;
    } else {
      kind = kSerial, count = 1;
    }
  }
  Part part(const Geometry& g, int64_t i) const {
    switch (kind) {
      case kImages:
        return {g.N * i / count, g.N * (i + 1) / count, 0, g.G};
      case kGroups:
        return {0, g.N, g.G * i / count, g.G * (i + 1) / count};
      case kSerial:
        break;
    }
    return {0, g.N, 0, g.G};
  }
  // Runs fn(part_index, part) on the pool, one part per thread.
  template <class Fn>
  void run(const Geometry& g, Fn&& fn) const {
    if (count == 1) {
      fn(int64_t(0), part(g, 0));
      return;
    }
    parallel_for(0, count, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) fn(i, part(g, i));
    });
  }
};

// A run of output rows [r0, r1) of the flattened (n, oh) index; either whole images or
// rows of the single image n0.
struct Tile {
  int64_t r0, r1, n0, n1;  // images [n0, n1) overlap the tile
  bool single_image() const { return n1 - n0 == 1; }
  int64_t cols(const Geometry& g) const { return (r1 - r0) * g.OW; }
  int64_t first_pixel(const Geometry& g) const { return (r0 - n0 * g.OH) * g.OW; }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The most output rows whose column matrix and output scratch fit the per-thread budget.
template <class T>
int64_t rows_per_tile(const Geometry& g) {
  const int64_t per_row = int64_t(sizeof(T)) * std::max(g.K, g.Cout_g) * g.OW;
  const int64_t rows = std::max<int64_t>(1, ConvTraits::kColumnBytes / per_row);
  return rows >= g.OH ? rows / g.OH * g.OH : rows;
}

// Cuts the part into tiles of at most max_rows rows, evened out so that no tile is a small
// remainder (a short GEMM runs far below peak).
template <class Fn>
void for_each_tile(const Geometry& g, const Part& part, int64_t max_rows, Fn&& fn) {
  const int64_t end = part.n1 * g.OH;
  int64_t rows;
  if (max_rows < g.OH) {
    rows = ceil_div(g.OH, ceil_div(g.OH, max_rows));
  } else {
    const int64_t images = part.n1 - part.n0, per_tile = max_rows / g.OH;
    rows = ceil_div(images, ceil_div(std::max<int64_t>(images, 1), per_tile)) * g.OH;
  }
  for (int64_t r = part.n0 * g.OH; r < end;) {
    int64_t r1 = std::min(r + rows, end);
    if (rows < g.OH) r1 = std::min(r1, (r / g.OH + 1) * g.OH);
    fn(Tile{r, r1, r / g.OH, (r1 - 1) / g.OH + 1});
    r = r1;
  }
}

// Per-thread scratch, kept between calls so big buffers are not faulted in every time.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> buffers[2];
  std::vector<T>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

// Calls fn(row_index_in_tile, input_row_or_null) for the tile's output rows at kernel row
// kh of channel `channel` (null where the row falls in the padding). No division per row:
// short rows (small late-stage images) would be dominated by it.
template <class T, class Fn>
void for_each_input_row(const Geometry& g, T* x, int64_t channel, int64_t kh, const Tile& t,
                        Fn&& fn) {
  int64_t n = t.n0, oh = t.r0 - t.n0 * g.OH;
  for (int64_t i = 0; i < t.r1 - t.r0; ++i) {
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
    fn(i, ih >= 0 && ih < g.H ? x + ((n * g.Cin + channel) * g.H + ih) * g.W : nullptr);
    if (++oh == g.OH) oh = 0, ++n;
  }
}

// dst[ow] = src[ow * sw + offset] on [lo, hi), zero elsewhere (src null: all zero).
template <class T>
inline void gather_row(const Geometry& g, const ValidCols& vc, const T* __restrict src,
                       T* __restrict dst) {
  if (!src) {
    for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = T(0);
    return;
  }
  for (int64_t ow = 0; ow < vc.lo; ++ow) dst[ow] = T(0);
  if (g.sw == 1) {
    for (int64_t ow = vc.lo; ow < vc.hi; ++ow) dst[ow] = src[ow + vc.offset];
  } else if (g.sw == 2) {
    for (int64_t ow = vc.lo; ow < vc.hi; ++ow) dst[ow] = src[2 * ow + vc.offset];
  } else {
    for (int64_t ow = vc.lo; ow < vc.hi; ++ow) dst[ow] = src[ow * g.sw + vc.offset];
  }
  for (int64_t ow = vc.hi; ow < g.OW; ++ow) dst[ow] = T(0);
}

// The adjoint of gather_row: dst[ow * sw + offset] += src[ow] on [lo, hi).
template <class T>
inline void scatter_add_row(const Geometry& g, const ValidCols& vc, const T* __restrict src,
                            T* __restrict dst) {
  if (g.sw == 1) {
    for (int64_t ow = vc.lo; ow < vc.hi; ++ow) dst[ow + vc.offset] += src[ow];
  } else {
    for (int64_t ow = vc.lo; ow < vc.hi; ++ow) dst[ow * g.sw + vc.offset] += src[ow];
  }
}

// col[(ci, kh, kw), (r - r0) * OW + ow] = x[n, group * Cin_g + ci, ih, iw] (0 outside).
template <class T>
void im2col(const Geometry& g, const T* x, int64_t group, const Tile& t, T* col) {
  const int64_t Q = t.cols(g), kk = g.kH * g.kW;
  const int64_t grain = std::max<int64_t>(1, ConvTraits::kCopyGrain / (kk * Q));
  parallel_for(0, g.Cin_g, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t ci = c0; ci < c1; ++ci) {
      for (int64_t kh = 0; kh < g.kH; ++kh) {
        T* dst = col + (ci * g.kH + kh) * g.kW * Q;
        for_each_input_row(g, x, group * g.Cin_g + ci, kh, t, [&](int64_t i, const T* src) {
          for (int64_t kw = 0; kw < g.kW; ++kw)
            gather_row(g, g.cols[kw], src, dst + kw * Q + i * g.OW);
        });
      }
    }
  });
}

// The adjoint of im2col: dx[n, group * Cin_g + ci, ih, iw] += col[...]. Each thread owns
// whole channels, so overlapping windows never race.
template <class T>
void col2im(const Geometry& g, const T* col, int64_t group, const Tile& t, T* dx) {
  const int64_t Q = t.cols(g), kk = g.kH * g.kW;
  const int64_t grain = std::max<int64_t>(1, ConvTraits::kCopyGrain / (kk * Q));
  parallel_for(0, g.Cin_g, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t ci = c0; ci < c1; ++ci) {
      for (int64_t kh = 0; kh < g.kH; ++kh) {
        const T* src = col + (ci * g.kH + kh) * g.kW * Q;
        for_each_input_row(g, dx, group * g.Cin_g + ci, kh, t, [&](int64_t i, T* dst) {
          if (!dst) return;
          for (int64_t kw = 0; kw < g.kW; ++kw)
            scatter_add_row(g, g.cols[kw], src + kw * Q + i * g.OW, dst);
        });
      }
    }
  });
}

// Between an NCHW tensor's channels [c0, c0 + C) of the tile's whole images and a [C, Q]
// matrix with the images side by side.
template <class T>
void gather_channels(const Geometry& g, const T* t, int64_t channels, int64_t c0, int64_t C,
                     const Tile& tile, T* mat) {
  const int64_t Q = tile.cols(g);
  for (int64_t n = tile.n0; n < tile.n1; ++n)
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(mat + c * Q + (n - tile.n0) * g.P, t + ((n * channels) + c0 + c) * g.P,
                  sizeof(T) * g.P);
}
template <class T>
void scatter_channels(const Geometry& g, const T* mat, int64_t channels, int64_t c0, int64_t C,
                      const Tile& tile, T* t) {
  const int64_t Q = tile.cols(g);
  for (int64_t n = tile.n0; n < tile.n1; ++n)
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(t + ((n * channels) + c0 + c) * g.P, mat + c * Q + (n - tile.n0) * g.P,
                  sizeof(T) * g.P);
}

// The tile's column matrix for `group`: the input itself (pointwise, one image) or im2col.
template <class T>
const T* columns(const Geometry& g, const T* x, int64_t group, const Tile& t, T* col, int64_t* ld) {
  if (g.pointwise && t.single_image()) {
    *ld = g.P;
    return x + (t.n0 * g.Cin + group * g.Cin_g) * g.P + t.first_pixel(g);
  }
  im2col(g, x, group, t, col);
  *ld = t.cols(g);
  return col;
}

// The tile's [Cout_g, Q] slice of dout for `group`: in place for one image, else gathered.
template <class T>
const T* dout_matrix(const Geometry& g, const T* dout, int64_t group, const Tile& t, T* tmp,
                     int64_t* ld) {
  if (t.single_image()) {
    *ld = g.P;
    return dout + (t.n0 * g.Cout + group * g.Cout_g) * g.P + t.first_pixel(g);
  }
  gather_channels(g, dout, g.Cout, group * g.Cout_g, g.Cout_g, t, tmp);
  *ld = t.cols(g);
  return tmp;
}

template <class T>
void forward_typed(const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const kernels::Conv2dParams& p, const Tensor& out) {
  const Geometry g(input, weight, out.shape(), p);
  const T* x = input.data<T>();
  const T* w = weight.data<T>();
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  T* y = out.data<T>();
  const int64_t rows = rows_per_tile<T>(g);
  Partition(g, rows).run(g, [&](int64_t, const Part& part) {
    T* col = scratch<T>(0, g.K * rows * g.OW);
    T* tmp = scratch<T>(1, g.Cout_g * rows * g.OW);
    for_each_tile(g, part, rows, [&](const Tile& t) {
      const int64_t Q = t.cols(g);
      for (int64_t grp = part.g0; grp < part.g1; ++grp) {
        int64_t ldb;
        const T* B = columns(g, x, grp, t, col, &ldb);
        const bool direct = t.single_image();
        T* C = direct ? y + (t.n0 * g.Cout + grp * g.Cout_g) * g.P + t.first_pixel(g) : tmp;
        const int64_t ldc = direct ? g.P : Q;
        gemm(false, false, g.Cout_g, Q, g.K, T(1), w + grp * g.Cout_g * g.K, g.K, B, ldb, T(0), C,
             ldc);
        if (b) {
          for (int64_t co = 0; co < g.Cout_g; ++co) {
            const T bv = b[grp * g.Cout_g + co];
            T* row = C + co * ldc;
            for (int64_t q = 0; q < Q; ++q) row[q] += bv;
          }
        }
        if (!direct) scatter_channels(g, tmp, g.Cout, grp * g.Cout_g, g.Cout_g, t, y);
      }
    });
  });
}

template <class T>
void backward_data_typed(const Tensor& dout, const Tensor& weight, const kernels::Conv2dParams& p,
                         const Tensor& dinp) {
  const Geometry g(dinp, weight, dout.shape(), p);
  const T* dy = dout.data<T>();
  const T* w = weight.data<T>();
  T* dx = dinp.data<T>();
  const int64_t rows = rows_per_tile<T>(g);
  Partition(g, rows).run(g, [&](int64_t, const Part& part) {
    // Zero this part's slice of dinp (col2im accumulates into it).
    const int64_t plane = g.H * g.W;
    for (int64_t n = part.n0; n < part.n1; ++n)
      std::fill(dx + (n * g.Cin + part.g0 * g.Cin_g) * plane,
                dx + (n * g.Cin + part.g1 * g.Cin_g) * plane, T(0));
    T* col = scratch<T>(0, g.K * rows * g.OW);
    T* tmp = scratch<T>(1, g.Cout_g * rows * g.OW);
    for_each_tile(g, part, rows, [&](const Tile& t) {
      const int64_t Q = t.cols(g);
      for (int64_t grp = part.g0; grp < part.g1; ++grp) {
        int64_t ldb;
        const T* B = dout_matrix(g, dy, grp, t, tmp, &ldb);
        const T* A = w + grp * g.Cout_g * g.K;
        if (g.pointwise && t.single_image()) {
          T* C = dx + (t.n0 * g.Cin + grp * g.Cin_g) * g.P + t.first_pixel(g);
          gemm(true, false, g.K, Q, g.Cout_g, T(1), A, g.K, B, ldb, T(0), C, g.P);
        } else {
          gemm(true, false, g.K, Q, g.Cout_g, T(1), A, g.K, B, ldb, T(0), col, Q);
          col2im(g, col, grp, t, dx);
        }
      }
    });
  });
}

template <class T>
void bias_grad(const Geometry& g, const T* dy, T* db) {
  const int64_t per_channel = std::max<int64_t>(1, g.N * g.P);
  parallel_for(0, g.Cout, std::max<int64_t>(1, ConvTraits::kCopyGrain / per_channel),
               [&](int64_t c0, int64_t c1) {
                 for (int64_t c = c0; c < c1; ++c) {
                   double total = 0;
                   for (int64_t n = 0; n < g.N; ++n) {
                     const T* row = dy + (n * g.Cout + c) * g.P;
                     for (int64_t q = 0; q < g.P; ++q) total += double(row[q]);
                   }
                   db[c] = T(total);
                 }
               });
}

template <class T>
void backward_weight_typed(const Tensor& dout, const Tensor& input, const kernels::Conv2dParams& p,
                           const Tensor& dweight, const Tensor& dbias) {
  const Geometry g(input, dweight, dout.shape(), p);
  const T* dy = dout.data<T>();
  const T* x = input.data<T>();
  T* dw = dweight.data<T>();
  const int64_t rows = rows_per_tile<T>(g);
  const Partition parts(g, rows);
  // Splitting images makes each thread sum its own dweight; the partials add in part order.
  const int64_t wsize = g.Cout * g.K;
  const bool split_images = parts.kind == Partition::kImages && parts.count > 1;
  std::vector<T> partials;
  if (split_images) partials.resize(size_t((parts.count - 1) * wsize));
  parts.run(g, [&](int64_t index, const Part& part) {
    T* acc = split_images && index > 0 ? partials.data() + (index - 1) * wsize : dw;
    T* col = scratch<T>(0, g.K * rows * g.OW);
    T* tmp = scratch<T>(1, g.Cout_g * rows * g.OW);
    bool first = true;
    for_each_tile(g, part, rows, [&](const Tile& t) {
      const int64_t Q = t.cols(g);
      for (int64_t grp = part.g0; grp < part.g1; ++grp) {
        int64_t lda, ldb;
        const T* A = dout_matrix(g, dy, grp, t, tmp, &lda);
        const T* B = columns(g, x, grp, t, col, &ldb);
        gemm(false, true, g.Cout_g, g.K, Q, T(1), A, lda, B, ldb, first ? T(0) : T(1),
             acc + grp * g.Cout_g * g.K, g.K);
      }
      first = false;
    });
    if (first) {  // no tiles: an empty batch
      for (int64_t grp = part.g0; grp < part.g1; ++grp)
        std::fill(acc + grp * g.Cout_g * g.K, acc + (grp + 1) * g.Cout_g * g.K, T(0));
    }
  });
  if (split_images) {
    parallel_for(0, wsize, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = 1; i < parts.count; ++i) {
        const T* src = partials.data() + (i - 1) * wsize;
        for (int64_t j = b; j < e; ++j) dw[j] += src[j];
      }
    });
  }
  if (dbias.defined()) bias_grad(g, dy, dbias.data<T>());
}

void conv2d_forward_cpu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const kernels::Conv2dParams& p, const Tensor& out) {
  dispatch_float(input.dtype(), "conv2d",
                 [&]<class T>() { forward_typed<T>(input, weight, bias, p, out); });
}

void conv2d_backward_data_cpu(const Tensor& dout, const Tensor& weight,
                              const kernels::Conv2dParams& p, const Tensor& dinp) {
  dispatch_float(dout.dtype(), "conv2d_backward_data",
                 [&]<class T>() { backward_data_typed<T>(dout, weight, p, dinp); });
}

void conv2d_backward_weight_cpu(const Tensor& dout, const Tensor& input,
                                const kernels::Conv2dParams& p, const Tensor& dweight,
                                const Tensor& dbias) {
  dispatch_float(dout.dtype(), "conv2d_backward_weight",
                 [&]<class T>() { backward_weight_typed<T>(dout, input, p, dweight, dbias); });
}

}  // namespace
}  // namespace iris::cpu

namespace iris::kernels {
IRIS_REGISTER_KERNEL(conv2d_forward, CPU, cpu::conv2d_forward_cpu);
IRIS_REGISTER_KERNEL(conv2d_backward_data, CPU, cpu::conv2d_backward_data_cpu);
IRIS_REGISTER_KERNEL(conv2d_backward_weight, CPU, cpu::conv2d_backward_weight_cpu);
}  // namespace iris::kernels
