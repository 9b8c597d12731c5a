#pragma once
// Persistent CPU thread pool. Size from IRIS_NUM_THREADS, default all cores.
#include <cstdint>
#include <functional>

namespace iris {

// Number of threads parallel_for may use (the caller counts as one).
int num_threads();
// Resize the pool (tests and benchmarks); n >= 1.
void set_num_threads(int n);

// Calls fn(b, e) over disjoint chunks covering [begin, end), each at least
// `grain` long where possible, on the pool. Runs inline when the range is one
// chunk or when called from inside a pool task (no nested parallelism).
// Exceptions thrown by fn are rethrown in the caller (the first one wins).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace iris
