#pragma once
// DataLoader: cuts a Dataset into batches, in order or in a seeded shuffle, applying a transform to
// each example, while a background thread prepares the next batches.
//
// The order of epoch e is a pure function of (seed, e), and the loader's whole position is the small
// DataLoaderState {seed, epoch, batch}. Saving state() with a checkpoint and calling load_state()
// after a restart therefore continues with exactly the batches an uninterrupted run would have seen.
//
//   data::DataLoader loader(dataset, {.batch_size = 64, .shuffle = true});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (data::Batch& batch : loader) { ... }   // one pass = the rest of the current epoch
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "ember/data/dataset.h"
#include "ember/data/transforms.h"
#include "ember/state_dict.h"

namespace ember::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;        // drop a last batch smaller than batch_size
  std::optional<uint64_t> seed;  // unset: drawn from ember's global generator at construction
  int64_t prefetch = 2;          // batches prepared ahead by the background thread; 0: no thread
  std::shared_ptr<const Transform> transform;  // applied to each example's data
};

struct DataLoaderState {
  uint64_t seed = 0;
  int64_t epoch = 0;  // epochs completed
  int64_t batch = 0;  // batches of the current epoch already handed out
  bool operator==(const DataLoaderState&) const = default;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch of the current epoch. At the end of the epoch returns nullopt once, and the
  // loader moves on to the next epoch (so the following call starts it).
  std::optional<Batch> next();

  int64_t num_batches() const;  // per epoch
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }

  // Where the loader stands. Read inside a loop body, it is the state *after* the current batch:
  // a loader restored from it continues with the next batch.
  DataLoaderState state() const;
  void load_state(const DataLoaderState& state);
  // The same state as checkpoint metadata ("seed", "epoch", "batch" as decimal text), to save beside a
  // model and an optimizer: StateDict all; all.insert("data.", loader.state_dict()); ...
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);
  // Dataset indices in the order epoch `epoch` visits them (identity when not shuffling).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  class Iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Batch& operator*() { return *batch_; }
    Batch* operator->() { return &*batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return !batch_ && !other.batch_; }

   private:
    friend class DataLoader;
    explicit Iterator(DataLoader* loader);
    DataLoader* loader_ = nullptr;
    std::optional<Batch> batch_;
  };
  // Iterates over the rest of the current epoch.
  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(); }

 private:
  class Worker;
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch) const;
  void stop_worker();

  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  DataLoaderState state_;
  std::vector<int64_t> order_;  // order of state_.epoch
  int64_t order_epoch_ = -1;    // which epoch order_ belongs to
  std::unique_ptr<Worker> worker_;
};

}  // namespace ember::data
