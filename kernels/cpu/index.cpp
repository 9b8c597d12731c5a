// CPU indexing and joining kernels. Every tensor is dense row-major; shapes are
// split around `dim` into [outer, size, inner] so the inner rows are contiguous runs.
// index_add / scatter_add on bf16/f16 accumulate in a float copy of out, rounded once at the end.
#include "kernels/index.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(cat)
IRIS_DEFINE_KERNEL_TABLE(index_select)
IRIS_DEFINE_KERNEL_TABLE(index_add)
IRIS_DEFINE_KERNEL_TABLE(gather)
IRIS_DEFINE_KERNEL_TABLE(scatter_add)
IRIS_DEFINE_KERNEL_TABLE(check_index_range)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct IndexKernelTraits {
  // cat: each thread copies at least this many bytes.
  static constexpr int64_t kCopyGrainBytes = 1 << 16;
  // index_select / gather: elements per thread at least.
  static constexpr int64_t kGrainElements = 32768;
  // gather / scatter_add / index_add: inner positions handled per work unit; their
  // offsets live on the stack.
  static constexpr int64_t kInnerChunk = 256;
  // scatter_add narrows its column blocks down to this to give each thread work.
  static constexpr int64_t kMinInnerChunk = 16;
  // index_add / scatter_add aim for this many work units per thread (load balance).
  static constexpr int64_t kUnitsPerThread = 4;
  static_assert(kCopyGrainBytes >= 4096 && kGrainElements >= 1024);
  static_assert(kMinInnerChunk >= 1 && kMinInnerChunk <= kInnerChunk && kInnerChunk <= 1024);
  static_assert(kUnitsPerThread >= 1);
};

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// [outer, size, inner] of a dense tensor split at dim (a 0-dim tensor is [1, 1, 1]).
struct Split3 {
  int64_t outer, size, inner;
};
Split3 split3(const Shape& s, int64_t dim) {
  if (s.empty()) return {1, 1, 1};
  const int64_t nd = static_cast<int64_t>(s.size());
  return {prod(s, 0, dim), s[dim], prod(s, dim + 1, nd)};
}

// The accumulation target of index_add / scatter_add: out itself, or for bf16/f16 a float copy
// that store() rounds back into out once.
template <class T>
class Accumulator {
 public:
  using A = compute_t<T>;
  explicit Accumulator(const Tensor& out) : out_(static_cast<T*>(out.raw_data())), n_(out.numel()) {
    if constexpr (is_half_v<T>) {
      buf_.resize(static_cast<size_t>(n_));
      parallel_for(0, n_, IndexKernelTraits::kGrainElements, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) buf_[i] = load_compute(out_[i]);
      });
    }
  }
  A* data() {
    if constexpr (is_half_v<T>)
      return buf_.data();
    else
      return out_;
  }
  void store() {
    if constexpr (is_half_v<T>)
      parallel_for(0, n_, IndexKernelTraits::kGrainElements, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out_[i] = store_compute<T>(buf_[i]);
      });
  }

 private:
  T* out_;
  int64_t n_;
  std::vector<A> buf_;
};

// ---- cat ----

void cat_cpu(const std::vector<Tensor>& inputs, int64_t dim, const Tensor& out) {
  const int64_t isz = static_cast<int64_t>(itemsize(out.dtype()));
  const Split3 o = split3(out.shape(), dim);
  const int64_t row_bytes = o.size * o.inner * isz;
  if (o.outer * row_bytes == 0) return;
  // Byte offset of each input's piece inside an output row.
  std::vector<int64_t> piece_begin(inputs.size() + 1, 0);
  std::vector<const char*> src(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t n = inputs[i].dim() == 0 ? 1 : inputs[i].size(dim);
    piece_begin[i + 1] = piece_begin[i] + n * o.inner * isz;
    src[i] = static_cast<const char*>(inputs[i].raw_data());
  }
  char* dst = static_cast<char*>(out.raw_data());
  // One pass over the output's bytes: a chunk maps to (row, piece) runs.
  parallel_for(
      0, o.outer * row_bytes, IndexKernelTraits::kCopyGrainBytes, [&](int64_t begin, int64_t end) {
        int64_t pos = begin;
        while (pos < end) {
          const int64_t row = pos / row_bytes, within = pos % row_bytes;
          const size_t i =
              static_cast<size_t>(std::upper_bound(piece_begin.begin(), piece_begin.end(), within) -
                                  piece_begin.begin() - 1);
          const int64_t piece = piece_begin[i + 1] - piece_begin[i];
          const int64_t at = within - piece_begin[i];
          const int64_t n = std::min(piece - at, end - pos);
          std::memcpy(dst + pos, src[i] + row * piece + at, n);
          pos += n;
        }
      });
}

// ---- index_select / index_add (1-D index) ----

void index_select_cpu(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const Split3 s = split3(x.shape(), dim);
  const int64_t K = index.numel();
  const int64_t* idx = index.data<int64_t>();
  const int64_t grain =
      std::max<int64_t>(1, IndexKernelTraits::kGrainElements / std::max<int64_t>(1, s.inner));
  dispatch_all(x.dtype(), [&]<class T>() {
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    parallel_for(0, s.outer * K, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r / K, k = r % K;
        const T* from = xp + (o * s.size + idx[k]) * s.inner;
        std::copy(from, from + s.inner, op + r * s.inner);
      }
    });
  });
}

void index_add_cpu(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const Split3 s = split3(out.shape(), dim);
  const int64_t K = index.numel();
  const int64_t* idx = index.data<int64_t>();
  constexpr int64_t kChunk = IndexKernelTraits::kInnerChunk;
  const int64_t chunks = (s.inner + kChunk - 1) / kChunk;
  // Destination rows are split into blocks too, so a single wide slice (an embedding
  // table's gradient) still feeds every thread; each unit scans all K indices.
  const int64_t want = IndexKernelTraits::kUnitsPerThread * num_threads();
  const int64_t row_blocks =
      std::clamp<int64_t>((want + s.outer * chunks - 1) / (s.outer * chunks), 1, s.size);
  const int64_t rows_per_block = (s.size + row_blocks - 1) / row_blocks;
  dispatch_numeric_or_half(out.dtype(), "index_add", [&]<class T>() {
    using A = compute_t<T>;
    Accumulator<T> acc(out);
    A* op = acc.data();
    const T* sp = static_cast<const T*>(src.raw_data());
    // A unit owns rows [r0, r1) x columns [j0, j1) of one outer slice and adds in
    // increasing k: no two units write one element, and the sum order is fixed.
    parallel_for(0, s.outer * row_blocks * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t o = u / (row_blocks * chunks), rest = u % (row_blocks * chunks);
        const int64_t r0 = (rest / chunks) * rows_per_block;
        const int64_t r1 = std::min(s.size, r0 + rows_per_block);
        const int64_t j0 = (rest % chunks) * kChunk, j1 = std::min(s.inner, j0 + kChunk);
        for (int64_t k = 0; k < K; ++k) {
          if (idx[k] < r0 || idx[k] >= r1) continue;
          A* to = op + (o * s.size + idx[k]) * s.inner;
          const T* from = sp + (o * K + k) * s.inner;
          for (int64_t j = j0; j < j1; ++j) to[j] += load_compute(from[j]);
        }
      }
    });
    acc.store();
  });
}

// ---- gather / scatter_add (index with as many dims as x) ----

// Offsets, in a dense tensor with strides `st`, of index positions split around dim:
// outer positions (dims before dim) and inner positions (dims after dim).
struct IndexWalk {
  const Shape& ishape;
  int64_t dim;

  int64_t outer_offset(int64_t o, const Shape& st) const {
    int64_t off = 0;
    for (int64_t d = dim - 1; d >= 0; --d) {
      off += (o % ishape[d]) * st[d];
      o /= ishape[d];
    }
    return off;
  }
  // offs[p] = offset of inner position p0 + p, for p < n.
  void inner_offsets(int64_t p0, int64_t n, const Shape& st, int64_t* offs) const {
    const int64_t nd = static_cast<int64_t>(ishape.size());
    int64_t coord[16];
    int64_t off = 0, rem = p0;
    for (int64_t d = nd - 1; d > dim; --d) {
      coord[d] = rem % ishape[d];
      rem /= ishape[d];
      off += coord[d] * st[d];
    }
    for (int64_t p = 0; p < n; ++p) {
      offs[p] = off;
      for (int64_t d = nd - 1; d > dim; --d) {
        if (++coord[d] < ishape[d]) {
          off += st[d];
          break;
        }
        off -= (ishape[d] - 1) * st[d];
        coord[d] = 0;
      }
    }
  }
};

// Strides of a dense tensor, with a 0-dim tensor treated as [1].
Shape dense_strides(const Tensor& t) {
  return t.dim() == 0 ? Shape{1} : contiguous_strides(t.shape());
}
Shape shape_1d(const Tensor& t) { return t.dim() == 0 ? Shape{1} : t.shape(); }

void gather_cpu(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const Shape ishape = shape_1d(index);
  const Split3 s = split3(ishape, dim);
  const Shape xst = dense_strides(x);
  const IndexWalk walk{ishape, dim};
  constexpr int64_t kChunk = IndexKernelTraits::kInnerChunk;
  const int64_t chunks = (s.inner + kChunk - 1) / kChunk;
  const int64_t* idx = index.data<int64_t>();
  dispatch_all(x.dtype(), [&]<class T>() {
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    const int64_t grain = std::max<int64_t>(1, IndexKernelTraits::kGrainElements / kChunk);
    parallel_for(0, s.outer * s.size * chunks, grain, [&](int64_t begin, int64_t end) {
      int64_t xoff[kChunk];
      int64_t cached_chunk = -1;
      for (int64_t u = begin; u < end; ++u) {
        const int64_t chunk = u % chunks, ok = u / chunks;  // ok = o * size + k
        const int64_t o = ok / s.size;
        const int64_t p0 = chunk * kChunk, n = std::min(kChunk, s.inner - p0);
        if (chunk != cached_chunk) {
          walk.inner_offsets(p0, n, xst, xoff);
          cached_chunk = chunk;
        }
        const T* xbase = xp + walk.outer_offset(o, xst);
        const int64_t* irow = idx + ok * s.inner + p0;
        T* orow = op + ok * s.inner + p0;
        for (int64_t p = 0; p < n; ++p) orow[p] = xbase[irow[p] * xst[dim] + xoff[p]];
      }
    });
  });
}

void scatter_add_cpu(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const Shape ishape = shape_1d(index);
  const Split3 s = split3(ishape, dim);
  const Shape ost = dense_strides(out), sst = dense_strides(src);
  const IndexWalk walk{ishape, dim};
  constexpr int64_t kChunk = IndexKernelTraits::kInnerChunk;
  // Narrower column blocks when there are too few to give every thread some.
  const int64_t want = IndexKernelTraits::kUnitsPerThread * num_threads();
  const int64_t per_outer = (want + s.outer - 1) / s.outer;
  const int64_t width = std::clamp<int64_t>((s.inner + per_outer - 1) / per_outer,
                                            IndexKernelTraits::kMinInnerChunk, kChunk);
  const int64_t chunks = (s.inner + width - 1) / width;
  const int64_t* idx = index.data<int64_t>();
  dispatch_numeric_or_half(out.dtype(), "scatter_add", [&]<class T>() {
    using A = compute_t<T>;
    Accumulator<T> acc(out);
    A* op = acc.data();
    const T* sp = static_cast<const T*>(src.raw_data());
    // A unit owns a block of fibres along dim (one outer position, a chunk of inner
    // positions) and walks k in order: deterministic, no two units write one element.
    parallel_for(0, s.outer * chunks, 1, [&](int64_t begin, int64_t end) {
      int64_t ooff[kChunk], soff[kChunk];
      for (int64_t u = begin; u < end; ++u) {
        const int64_t o = u / chunks, p0 = (u % chunks) * width;
        const int64_t n = std::min(width, s.inner - p0);
        walk.inner_offsets(p0, n, ost, ooff);
        walk.inner_offsets(p0, n, sst, soff);
        A* obase = op + walk.outer_offset(o, ost);
        const T* sbase = sp + walk.outer_offset(o, sst);
        for (int64_t k = 0; k < s.size; ++k) {
          const int64_t* irow = idx + (o * s.size + k) * s.inner + p0;
          const T* srow = sbase + k * sst[dim];
          for (int64_t p = 0; p < n; ++p)
            obase[irow[p] * ost[dim] + ooff[p]] += load_compute(srow[soff[p]]);
        }
      }
    });
    acc.store();
  });
}

// ---- index validation ----

void check_index_range_cpu(const char* op, const Tensor& index, int64_t limit, const Tensor& x,
                           int64_t dim) {
  const int64_t n = index.numel();
  const int64_t* idx = index.data<int64_t>();
  std::atomic<int64_t> first_bad{n};
  parallel_for(0, n, IndexKernelTraits::kGrainElements, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (idx[i] < 0 || idx[i] >= limit) {
        int64_t cur = first_bad.load();
        while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
        }
        return;
      }
    }
  });
  const int64_t bad = first_bad.load();
  IRIS_CHECK(bad == n, op, ": index ", idx[bad], " is out of range for dim ", dim, " of size ",
             limit, " (at flat position ", bad, " of index ", index.desc(), "; input ", x.desc(),
             ")");
}

}  // namespace

IRIS_REGISTER_KERNEL(cat, CPU, cat_cpu);
IRIS_REGISTER_KERNEL(index_select, CPU, index_select_cpu);
IRIS_REGISTER_KERNEL(index_add, CPU, index_add_cpu);
IRIS_REGISTER_KERNEL(gather, CPU, gather_cpu);
IRIS_REGISTER_KERNEL(scatter_add, CPU, scatter_add_cpu);
IRIS_REGISTER_KERNEL(check_index_range, CPU, check_index_range_cpu);

}  // namespace iris::cpu
