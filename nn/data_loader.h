#pragma once
// DataLoader: batches over the index range [0, size), made by worker threads ahead of
// the consumer through a bounded prefetch queue, delivered in a fixed order.
//
//   nn::DataLoader<MyBatch> loader(dataset.size(), [&](const nn::BatchRequest& r) {
//     return make_batch(r.indices, r);  // decode, augment (seeded by r.sample_seed(i)), collate
//   }, {.batch_size = 32, .seed = 7, .num_workers = 2});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) train_step(*batch);
//   }
//
// Determinism: the order of an epoch is a function of (seed, epoch), each batch a
// function of its BatchRequest, so the batches are the same for any number of workers.
// Workers are std::threads (they decode and read files; tensor math stays on the
// compute pool); make() runs on several of them at once, so it must be thread-safe.
// An exception thrown by make() reaches the consumer when it asks for that batch; with
// skip_bad an iris::Error is counted in skips() and the batch is skipped instead.
// Per-sample skipping: build make() with make_batch_fn().
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace iris::nn {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;
  int num_workers = 2;  // 0: batches are made on the consumer's thread, in next()
  int prefetch = 0;     // batches made ahead of the consumer at most; 0 = 2 * num_workers
  bool skip_bad = false;
};

// Skipped samples or batches (thread-safe): what the CLI reports at the end of a run.
class SkipLog {
 public:
  struct Entry {
    int64_t index;  // the sample index, or -1 for a whole batch
    std::string reason;
  };
  void add(int64_t index, std::string reason);
  int64_t count() const;
  std::vector<Entry> entries() const;
  void clear();

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

struct BatchRequest {
  std::vector<int64_t> indices;  // dataset indices, in batch order
  int64_t epoch = 0;
  int64_t batch = 0;        // position within the epoch
  uint64_t epoch_seed = 0;  // a function of (options.seed, epoch)
  bool skip_bad = false;
  SkipLog* skips = nullptr;
  // The seed for sample `index`'s augmentation: a function of (seed, epoch, index) only.
  uint64_t sample_seed(int64_t index) const;
};

// Thrown by make() for a batch that should vanish silently (every sample was skipped);
// the loader drops it whatever skip_bad says.
class EmptyBatch : public Error {
 public:
  EmptyBatch() : Error("data loader: every sample of the batch was skipped") {}
};

// The visiting order of an epoch: 0..size-1, shuffled by (seed, epoch) when `shuffle`.
std::vector<int64_t> epoch_order(int64_t size, uint64_t seed, int64_t epoch, bool shuffle);
// A well-mixed 64-bit function of (a, b) (splitmix64 finaliser).
uint64_t mix_seed(uint64_t a, uint64_t b);

// Variable-length token sequences padded to the longest one (or truncated to max_len > 0):
// ids int64 [B, L] and lengths int32 [B], so attention can skip the padding.
struct PaddedTokens {
  Tensor ids;
  Tensor lengths;
};
PaddedTokens pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t pad_id = 0,
                           int64_t max_len = 0);

template <class Batch>
class DataLoader {
 public:
  using MakeFn = std::function<Batch(const BatchRequest&)>;

  DataLoader(int64_t size, MakeFn make, LoaderOptions options = {})
      : size_(size), make_(std::move(make)), opt_(options) {
    IRIS_CHECK(size >= 0, "DataLoader: negative dataset size ", size);
    IRIS_CHECK(opt_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", opt_.batch_size);
    IRIS_CHECK(opt_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ",
               opt_.num_workers);
    IRIS_CHECK(opt_.prefetch >= 0, "DataLoader: prefetch must be >= 0, got ", opt_.prefetch);
    IRIS_CHECK(make_ != nullptr, "DataLoader: no make function");
    if (opt_.prefetch == 0) opt_.prefetch = std::max(1, 2 * opt_.num_workers);
    for (int i = 0; i < opt_.num_workers; ++i) workers_.emplace_back([this] { work(); });
  }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;
  // Stops the workers; one busy in make() finishes that batch first.
  ~DataLoader() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  int64_t size() const { return size_; }
  int64_t batches_per_epoch() const {
    return opt_.drop_last ? size_ / opt_.batch_size
                          : (size_ + opt_.batch_size - 1) / opt_.batch_size;
  }
  const LoaderOptions& options() const { return opt_; }
  const SkipLog& skips() const { return skips_; }

  // Begins epoch `epoch` (abandoning what is left of the current one) and lets the workers
  // start on its first batches.
  void start_epoch(int64_t epoch) {
    IRIS_CHECK(epoch >= 0, "DataLoader: negative epoch ", epoch);
    std::vector<int64_t> order = epoch_order(size_, opt_.seed, epoch, opt_.shuffle);
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++generation_;
      epoch_ = epoch;
      order_ = std::move(order);
      issued_ = consumed_ = 0;
      ready_.clear();
    }
    work_cv_.notify_all();
  }

  // The next batch of the epoch in order, or nullopt after its last batch.
  std::optional<Batch> next() {
    while (true) {
      Slot slot;
      int64_t b = 0;
      {
        std::unique_lock<std::mutex> lk(mu_);
        IRIS_CHECK(epoch_ >= 0, "DataLoader: next() before start_epoch()");
        if (consumed_ >= batches_per_epoch()) return std::nullopt;
        b = consumed_++;
        if (workers_.empty()) {
          BatchRequest req = request_locked(b);
          lk.unlock();
          slot = produce(req);
        } else {
          ready_cv_.wait(lk, [&] { return ready_.count(b) > 0; });
          auto it = ready_.find(b);
          slot = std::move(it->second);
          ready_.erase(it);
        }
      }
      work_cv_.notify_all();
      if (!slot.error) return std::move(slot.batch);
      if (!skippable(slot.error)) std::rethrow_exception(slot.error);
    }
  }

 private:
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  BatchRequest request_locked(int64_t b) {
    BatchRequest req;
    const int64_t begin = b * opt_.batch_size;
    const int64_t end = std::min<int64_t>(begin + opt_.batch_size, size_);
    req.indices.assign(order_.begin() + begin, order_.begin() + end);
    req.epoch = epoch_;
    req.batch = b;
    req.epoch_seed = mix_seed(opt_.seed, static_cast<uint64_t>(epoch_));
    req.skip_bad = opt_.skip_bad;
    req.skips = &skips_;
    return req;
  }

  Slot produce(const BatchRequest& req) {
    Slot slot;
    try {
      slot.batch.emplace(make_(req));
    } catch (...) {
      slot.error = std::current_exception();
    }
    return slot;
  }

  // EmptyBatch always vanishes; other iris::Errors only with skip_bad (and are counted).
  bool skippable(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const EmptyBatch&) {
      return true;
    } catch (const Error& e) {
      if (!opt_.skip_bad) return false;
      skips_.add(-1, e.what());
      return true;
    } catch (...) {
      return false;
    }
  }

  void work() {
    std::unique_lock<std::mutex> lk(mu_);
    while (true) {
      work_cv_.wait(lk, [&] {
        return stop_ || (epoch_ >= 0 && issued_ < batches_per_epoch() &&
                         issued_ < consumed_ + opt_.prefetch);
      });
      if (stop_) return;
      const int64_t b = issued_++;
      const uint64_t generation = generation_;
      const BatchRequest req = request_locked(b);
      lk.unlock();
      Slot slot = produce(req);
      lk.lock();
      if (generation == generation_) {
        ready_.emplace(b, std::move(slot));
        ready_cv_.notify_all();
      }
    }
  }

  const int64_t size_;
  const MakeFn make_;
  LoaderOptions opt_;
  SkipLog skips_;

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch: older batches are dropped
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  int64_t issued_ = 0, consumed_ = 0;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> workers_;  // last: started after everything above exists
};

// make() from a per-sample loader and a collate step. With req.skip_bad, a sample whose
// load throws iris::Error is recorded in req.skips (index and message) and left out of its
// batch; a batch left with no sample vanishes (EmptyBatch). Without it the error propagates.
template <class Sample, class Batch>
std::function<Batch(const BatchRequest&)> make_batch_fn(
    std::function<Sample(int64_t index, const BatchRequest& req)> load,
    std::function<Batch(std::vector<Sample>&& samples, std::vector<int64_t>&& indices,
                        const BatchRequest& req)>
        collate) {
  return [load = std::move(load), collate = std::move(collate)](const BatchRequest& req) {
    std::vector<Sample> samples;
    std::vector<int64_t> kept;
    samples.reserve(req.indices.size());
    for (int64_t index : req.indices) {
      try {
        samples.push_back(load(index, req));
        kept.push_back(index);
      } catch (const Error& e) {
        if (!req.skip_bad || req.skips == nullptr) throw;
        req.skips->add(index, e.what());
      }
    }
    if (samples.empty()) throw EmptyBatch();
    return collate(std::move(samples), std::move(kept), req);
  };
}

}  // namespace iris::nn
