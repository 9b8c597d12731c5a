// DataLoader: order and determinism for any worker count, the bounded prefetch queue,
// errors reaching the consumer (or counted skips), shutdown; padding of token batches.
#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include "nn/data_loader.h"
#include "nn/image.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using Indices = std::vector<int64_t>;

struct Batch {
  Indices indices;
  std::vector<uint64_t> seeds;
  int64_t epoch = 0, batch = 0;
};

Batch echo(const BatchRequest& r) {
  Batch b{r.indices, {}, r.epoch, r.batch};
  for (int64_t i : r.indices) b.seeds.push_back(r.sample_seed(i));
  return b;
}

std::vector<Batch> run_epoch(DataLoader<Batch>& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

TEST(EpochOrder, PermutationsBySeedAndEpoch) {
  const Indices a = epoch_order(1000, 7, 0, true);
  Indices sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_EQ(a, epoch_order(1000, 7, 0, true));
  EXPECT_NE(a, epoch_order(1000, 7, 1, true));
  EXPECT_NE(a, epoch_order(1000, 8, 0, true));
  EXPECT_EQ(epoch_order(5, 7, 3, false), (Indices{0, 1, 2, 3, 4}));
  EXPECT_TRUE(epoch_order(0, 1, 0, true).empty());
  EXPECT_EQ(epoch_order(1, 1, 0, true), (Indices{0}));
  // Every element lands everywhere about equally often (a crude uniformity check).
  std::vector<int64_t> first(10, 0);
  for (int64_t e = 0; e < 2000; ++e) ++first[epoch_order(10, 1, e, true)[0]];
  for (int64_t f : first) EXPECT_NEAR(f, 200, 60);
}

TEST(DataLoader, EveryIndexOncePerEpochInBatches) {
  for (bool drop_last : {false, true}) {
    DataLoader<Batch> loader(23, echo, {.batch_size = 5, .drop_last = drop_last, .num_workers = 2});
    EXPECT_EQ(loader.batches_per_epoch(), drop_last ? 4 : 5);
    const std::vector<Batch> batches = run_epoch(loader, 0);
    ASSERT_EQ(static_cast<int64_t>(batches.size()), loader.batches_per_epoch());
    std::set<int64_t> seen;
    for (size_t b = 0; b < batches.size(); ++b) {
      EXPECT_EQ(batches[b].batch, static_cast<int64_t>(b));
      EXPECT_EQ(batches[b].indices.size(), b < 4 ? 5u : 3u);
      for (int64_t i : batches[b].indices) EXPECT_TRUE(seen.insert(i).second);
    }
    EXPECT_EQ(seen.size(), drop_last ? 20u : 23u);
  }
}

TEST(DataLoader, SameBatchesForAnyWorkerCount) {
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    DataLoader<Batch> loader(50, echo,
                             {.batch_size = 8, .seed = 11, .num_workers = workers, .prefetch = 2});
    std::vector<Batch> all;
    for (int64_t epoch : {0, 1, 2}) {
      std::vector<Batch> e = run_epoch(loader, epoch);
      all.insert(all.end(), e.begin(), e.end());
    }
    runs.push_back(std::move(all));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_EQ(runs[r][b].indices, runs[0][b].indices);
      EXPECT_EQ(runs[r][b].seeds, runs[0][b].seeds);
      EXPECT_EQ(runs[r][b].epoch, runs[0][b].epoch);
    }
  }
  // Epochs differ in order, and a sample's seed depends on the epoch.
  EXPECT_NE(runs[0][0].indices, runs[0][7].indices);
  BatchRequest r0, r1;
  r0.epoch_seed = mix_seed(11, 0);
  r1.epoch_seed = mix_seed(11, 1);
  EXPECT_NE(r0.sample_seed(3), r1.sample_seed(3));
  EXPECT_NE(r0.sample_seed(3), r0.sample_seed(4));
}

// Random augmentation seeded per sample gives the same tensors whatever the threads do.
TEST(DataLoader, AugmentationIsDeterministicAcrossWorkers) {
  const Tensor image = testing::randn_seeded({3, 20, 24}, 1, DType::f32);
  auto make = [&](const BatchRequest& r) {
    std::vector<Tensor> crops;
    for (int64_t i : r.indices) {
      Generator g(r.sample_seed(i));
      crops.push_back(random_hflip(random_resized_crop(image, 8, 8, g), g));
    }
    return stack(crops);
  };
  std::vector<std::vector<Tensor>> runs;
  for (int workers : {0, 3}) {
    DataLoader<Tensor> loader(12, make, {.batch_size = 4, .seed = 5, .num_workers = workers});
    loader.start_epoch(2);
    runs.emplace_back();
    while (auto b = loader.next()) runs.back().push_back(*b);
  }
  ASSERT_EQ(runs[0].size(), 3u);
  for (size_t b = 0; b < 3; ++b) EXPECT_CLOSE(runs[1][b], runs[0][b], 0, 0);
}

TEST(DataLoader, PrefetchIsBounded) {
  std::atomic<int64_t> started{0}, consumed{0}, worst{0};
  auto make = [&](const BatchRequest& r) {
    const int64_t ahead = ++started - consumed.load();
    int64_t w = worst.load();
    while (ahead > w && !worst.compare_exchange_weak(w, ahead)) {
    }
    return echo(r);
  };
  DataLoader<Batch> loader(60, make, {.batch_size = 2, .num_workers = 3, .prefetch = 3});
  loader.start_epoch(0);
  while (auto b = loader.next()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow consumer
    ++consumed;
  }
  EXPECT_EQ(started.load(), 30);
  // At most `prefetch` batches ahead of the loader's count, which runs one ahead of ours.
  EXPECT_LE(worst.load(), 3 + 1);
}

TEST(DataLoader, ErrorsReachTheConsumerInOrder) {
  for (int workers : {0, 2}) {
    auto make = [](const BatchRequest& r) {
      if (r.batch == 2) IRIS_FAIL("bad image in batch ", r.batch);
      return echo(r);
    };
    DataLoader<Batch> loader(20, make, {.batch_size = 4, .shuffle = false, .num_workers = workers});
    loader.start_epoch(0);
    EXPECT_EQ(loader.next()->batch, 0);
    EXPECT_EQ(loader.next()->batch, 1);
    EXPECT_IRIS_ERROR(loader.next(), "bad image in batch 2");
    // The consumer may go on: the failed batch is behind it.
    EXPECT_EQ(loader.next()->batch, 3);
    EXPECT_EQ(loader.next()->batch, 4);
    EXPECT_FALSE(loader.next().has_value());
    EXPECT_EQ(loader.skips().count(), 0);
  }
}

TEST(DataLoader, SkipBadCountsAndSkipsFailedBatches) {
  auto make = [](const BatchRequest& r) {
    if (r.batch % 2 == 1) IRIS_FAIL("corrupt.png: cannot decode");
    return echo(r);
  };
  DataLoader<Batch> loader(20, make, {.batch_size = 4, .num_workers = 2, .skip_bad = true});
  const std::vector<Batch> batches = run_epoch(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[1].batch, 2);
  EXPECT_EQ(loader.skips().count(), 2);
  EXPECT_NE(loader.skips().entries()[0].reason.find("corrupt.png"), std::string::npos);
  EXPECT_EQ(loader.skips().entries()[0].index, -1);
}

TEST(DataLoader, OtherExceptionsAlwaysPropagate) {
  auto make = [](const BatchRequest& r) -> Batch {
    if (r.batch == 1) throw std::runtime_error("out of something");
    return echo(r);
  };
  DataLoader<Batch> loader(8, make, {.batch_size = 4, .num_workers = 1, .skip_bad = true});
  loader.start_epoch(0);
  EXPECT_TRUE(loader.next().has_value());
  EXPECT_THROW(loader.next(), std::runtime_error);
}

TEST(DataLoader, PerSampleSkipping) {
  auto load = [](int64_t index, const BatchRequest&) {
    if (index == 5 || index == 7 || (index >= 12 && index < 16))
      IRIS_FAIL("read_image: img", index, ".png: truncated PNG");
    return index * 10;
  };
  auto collate = [](std::vector<int64_t>&& values, Indices&& indices, const BatchRequest&) {
    EXPECT_EQ(values.size(), indices.size());
    return values;
  };
  auto make = make_batch_fn<int64_t, std::vector<int64_t>>(load, collate);
  DataLoader<std::vector<int64_t>> loader(
      20, make, {.batch_size = 4, .shuffle = false, .num_workers = 2, .skip_bad = true});
  loader.start_epoch(0);
  std::vector<std::vector<int64_t>> batches;
  while (auto b = loader.next()) batches.push_back(*b);
  // Batch [12, 16) lost every sample and vanished; 5 and 7 are left out of theirs.
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[1], (std::vector<int64_t>{40, 60}));
  EXPECT_EQ(batches[3], (std::vector<int64_t>{160, 170, 180, 190}));
  const auto skipped = loader.skips().entries();
  ASSERT_EQ(skipped.size(), 6u);
  std::set<int64_t> indices;
  for (const auto& s : skipped) indices.insert(s.index);
  EXPECT_EQ(indices, (std::set<int64_t>{5, 7, 12, 13, 14, 15}));
  EXPECT_NE(skipped[0].reason.find("truncated PNG"), std::string::npos);

  // Without skip_bad the first bad sample stops its batch.
  DataLoader<std::vector<int64_t>> strict(20, make, {.batch_size = 4, .shuffle = false});
  strict.start_epoch(0);
  strict.next();
  EXPECT_IRIS_ERROR(strict.next(), "img5.png: truncated PNG");
}

TEST(DataLoader, RestartingAnEpochAbandonsTheRest) {
  DataLoader<Batch> loader(40, echo, {.batch_size = 4, .num_workers = 2});
  loader.start_epoch(0);
  const Batch first = *loader.next();
  loader.next();
  const std::vector<Batch> again = run_epoch(loader, 0);
  ASSERT_EQ(again.size(), 10u);
  EXPECT_EQ(again[0].indices, first.indices);
  EXPECT_EQ(run_epoch(loader, 1).size(), 10u);
}

TEST(DataLoader, ShutsDownWithBatchesPendingAndInFlight) {
  std::atomic<int> made{0};
  auto slow = [&](const BatchRequest& r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ++made;
    return echo(r);
  };
  {
    DataLoader<Batch> loader(100, slow, {.batch_size = 1, .num_workers = 3, .prefetch = 4});
    loader.start_epoch(0);
    loader.next();
  }  // workers blocked on a full queue or inside make(): joined, no hang
  EXPECT_LE(made.load(), 1 + 4 + 3);
  DataLoader<Batch> never_started(10, echo, {.num_workers = 2});
}

TEST(DataLoader, BadUse) {
  EXPECT_IRIS_ERROR(DataLoader<Batch>(10, echo, {.batch_size = 0}), "batch_size must be >= 1");
  EXPECT_IRIS_ERROR(DataLoader<Batch>(-1, echo), "negative dataset size");
  EXPECT_IRIS_ERROR(DataLoader<Batch>(10, echo, {.num_workers = -1}), "num_workers");
  EXPECT_IRIS_ERROR(DataLoader<Batch>(10, nullptr), "no make function");
  DataLoader<Batch> loader(10, echo, {.num_workers = 1});
  EXPECT_IRIS_ERROR(loader.next(), "next() before start_epoch()");
  EXPECT_IRIS_ERROR(loader.start_epoch(-1), "negative epoch");
  DataLoader<Batch> empty(0, echo, {.num_workers = 2});
  EXPECT_TRUE(run_epoch(empty, 0).empty());
}

TEST(PadSequences, PadsToTheLongestAndReportsLengths) {
  const PaddedTokens p = pad_sequences({{1, 5, 9}, {1, 2}, {}, {1, 2, 3, 4, 2}}, 0);
  ASSERT_EQ(p.ids.shape(), (Shape{4, 5}));
  EXPECT_EQ(p.ids.dtype(), DType::i64);
  EXPECT_EQ(p.lengths.dtype(), DType::i32);
  EXPECT_EQ(p.ids.to_vector<int64_t>(),
            (std::vector<int64_t>{1, 5, 9, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 2}));
  EXPECT_EQ(p.lengths.to_vector<int32_t>(), (std::vector<int32_t>{3, 2, 0, 5}));
  const PaddedTokens t = pad_sequences({{1, 5, 9}, {1, 2}, {7, 7, 7, 7, 7}}, -1, 4);
  ASSERT_EQ(t.ids.shape(), (Shape{3, 4}));
  EXPECT_EQ(t.ids.to_vector<int64_t>(),
            (std::vector<int64_t>{1, 5, 9, -1, 1, 2, -1, -1, 7, 7, 7, 7}));
  EXPECT_EQ(t.lengths.to_vector<int32_t>(), (std::vector<int32_t>{3, 2, 4}));
  EXPECT_IRIS_ERROR(pad_sequences({}), "pad_sequences: no sequences");
  EXPECT_IRIS_ERROR(pad_sequences({{1}}, 0, -2), "pad_sequences: max_len must be >= 0");
}

}  // namespace
}  // namespace iris::nn
