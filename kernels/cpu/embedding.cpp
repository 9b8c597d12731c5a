// CPU embedding: a row gather, and a backward that buckets the ids by row
// (a stable counting sort) so each row of dweight is owned by one thread and
// summed in increasing id position: no atomics, the same bits for any thread count.
// bf16/f16 rows are copied as bits forward and summed in float backward (one rounding).
#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(embedding_forward)
IRIS_DEFINE_KERNEL_TABLE(embedding_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct EmbeddingTraits {
  // A parallel chunk moves at least this many elements.
  static constexpr int64_t kGrainElems = 16384;
  static_assert(kGrainElems > 0);
};
using Tr = EmbeddingTraits;

int64_t row_grain(int64_t D) {
  return std::max<int64_t>(1, Tr::kGrainElems / std::max<int64_t>(1, D));
}

void check_id(int64_t id, int64_t V, int64_t k) {
  IRIS_CHECK(id >= 0 && id < V, "embedding: index ", id, " (at position ", k,
             ") is out of range for a weight of ", V, " rows");
}

// Runs fn.template operator()<I>() for the C++ type of an index dtype.
template <class Fn>
void dispatch_index(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::i64:
      return fn.template operator()<int64_t>();
    case DType::i32:
      return fn.template operator()<int32_t>();
    default:
      IRIS_FAIL(op, ": indices must be int64 or int32, got ", dtype_name(dt));
  }
}

void embedding_forward_cpu(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  const int64_t V = weight.size(0), D = weight.size(1), n = ids.numel();
  const size_t row_bytes = static_cast<size_t>(D) * itemsize(weight.dtype());
  const char* pw = static_cast<const char*>(weight.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  dispatch_index(ids.dtype(), "embedding", [&]<class I>() {
    const I* pi = ids.data<I>();
    parallel_for(0, n, row_grain(D), [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t id = static_cast<int64_t>(pi[k]);
        check_id(id, V, k);
        std::memcpy(po + k * row_bytes, pw + id * row_bytes, row_bytes);
      }
    });
  });
}

void embedding_backward_cpu(const Tensor& dout, const Tensor& ids, int64_t padding_idx,
                            const Tensor& dweight) {
  const int64_t V = dweight.size(0), D = dweight.size(1), n = ids.numel();
  // Bucket the positions by id: bucket v is order[start[v] .. start[v + 1]), increasing.
  std::vector<int64_t> start(V + 1, 0), order(n);
  dispatch_index(ids.dtype(), "embedding_backward", [&]<class I>() {
    const I* pi = ids.data<I>();
    for (int64_t k = 0; k < n; ++k) {
      check_id(static_cast<int64_t>(pi[k]), V, k);
      ++start[static_cast<int64_t>(pi[k]) + 1];
    }
    for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t k = 0; k < n; ++k) order[next[static_cast<int64_t>(pi[k])]++] = k;
  });
  dispatch_float_or_half(dweight.dtype(), "embedding_backward", [&]<class T>() {
    using A = compute_t<T>;
    const T* pg = dout.data<T>();
    T* pw = dweight.data<T>();
    parallel_for(0, V, row_grain(D), [&](int64_t b, int64_t e) {
      std::vector<A> acc(static_cast<size_t>(D));
      for (int64_t v = b; v < e; ++v) {
        std::fill(acc.begin(), acc.end(), A(0));
        if (v != padding_idx) {
          for (int64_t q = start[v]; q < start[v + 1]; ++q) {
            const T* g = pg + order[q] * D;
            for (int64_t j = 0; j < D; ++j) acc[j] += load_compute(g[j]);
          }
        }
        T* row = pw + v * D;
        for (int64_t j = 0; j < D; ++j) row[j] = store_compute<T>(acc[j]);
      }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(embedding_forward, CPU, embedding_forward_cpu);
IRIS_REGISTER_KERNEL(embedding_backward, CPU, embedding_backward_cpu);

}  // namespace iris::cpu
