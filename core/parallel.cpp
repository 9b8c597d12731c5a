#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace iris {
namespace {

thread_local bool t_in_pool_task = false;

int default_threads() {
  if (const char* s = std::getenv("IRIS_NUM_THREADS")) {
    int n = std::atoi(s);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// One job at a time: workers wait on a generation counter, take chunk indices
// from an atomic, and the caller works too, then waits for the stragglers.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    stop();
    quit_ = false;
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { worker(); });
  }

  void run(int64_t nchunks, const std::function<void(int64_t)>& chunk) {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_.store(&chunk);
      nchunks_.store(nchunks);
      next_.store(0);
      done_ = 0;
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return done_ == nchunks_.load(); });
    // A late worker must find no chunk left, not an index of the next job.
    next_.store(kIdle);
    job_.store(nullptr);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    int64_t local_done = 0;
    for (;;) {
      int64_t i = next_.fetch_add(1);
      if (i >= nchunks_.load()) break;
      t_in_pool_task = true;
      try {
        (*job_.load())(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      t_in_pool_task = false;
      ++local_done;
    }
    if (local_done) {
      std::lock_guard<std::mutex> lk(mu_);
      done_ += local_done;
      if (done_ == nchunks_.load()) done_cv_.notify_all();
    }
  }

  void worker() {
    uint64_t seen = 0;
    for (;;) {
      spin_for_work(seen);
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || (generation_ != seen && job_.load() != nullptr); });
        if (quit_) return;
        seen = generation_;
      }
      work();
    }
  }

  // A worker asleep on the condition variable takes ~100 us to wake on these VMs,
  // which dominates small GEMMs; poll briefly before sleeping.
  void spin_for_work(uint64_t seen) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return;
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  static constexpr int64_t kIdle = INT64_MAX / 2;
  static constexpr int kSpinMicros = 50;
  std::atomic<const std::function<void(int64_t)>*> job_{nullptr};
  std::atomic<int64_t> nchunks_{0};
  std::atomic<int64_t> next_{kIdle};
  int64_t done_ = 0;
  std::atomic<uint64_t> generation_{0};
  bool quit_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(std::max(1, n)); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(1, grain);
  const int nt = t_in_pool_task ? 1 : num_threads();
  const int64_t nchunks = std::min<int64_t>(nt, (n + grain - 1) / grain);
  if (nchunks <= 1) {
    fn(begin, end);
    return;
  }
  const int64_t step = (n + nchunks - 1) / nchunks;
  pool().run(nchunks, [&](int64_t i) {
    const int64_t b = begin + i * step;
    const int64_t e = std::min(end, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace iris
