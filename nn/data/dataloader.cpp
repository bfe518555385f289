#include "ember/data/dataloader.h"

#include <charconv>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <variant>

#include "ember/error.h"

namespace ember::data {
namespace {
// Distinct tags keep the shuffle stream and the augmentation streams independent.
constexpr uint64_t kShuffleStream = 0x53485546464C45ULL;    // "SHUFFLE"
constexpr uint64_t kTransformStream = 0x5452414E53464DULL;  // "TRANSFM"
}  // namespace

// Prepares batches [first, num_batches) of one epoch, in order, on its own thread, keeping at most
// `capacity` finished batches queued. A failure is queued in place of the batch it was making.
class DataLoader::Worker {
 public:
  Worker(const DataLoader& loader, std::shared_ptr<const std::vector<int64_t>> order, int64_t epoch,
         int64_t first, int64_t capacity)
      : epoch_(epoch), next_(first), capacity_(capacity) {
    thread_ = std::thread([this, &loader, order = std::move(order), first] {
      const int64_t end = loader.num_batches();
      for (int64_t b = first; b < end; ++b) {
        {
          std::unique_lock lock(mutex_);
          space_.wait(lock, [&] { return cancelled_ || static_cast<int64_t>(queue_.size()) < capacity_; });
          if (cancelled_) return;
        }
        Item item;
        try {
          item = loader.make_batch(*order, epoch_, b);
        } catch (...) {
          item = std::current_exception();
        }
        bool failed = std::holds_alternative<std::exception_ptr>(item);
        {
          std::lock_guard lock(mutex_);
          queue_.push_back(std::move(item));
        }
        ready_.notify_one();
        if (failed) return;
      }
    });
  }

  ~Worker() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    space_.notify_one();
    thread_.join();
  }

  // Whether this worker's next batch is batch `batch` of epoch `epoch`.
  bool serves(int64_t epoch, int64_t batch) const { return epoch == epoch_ && batch == next_; }

  // Waits for the next batch; rethrows the failure that replaced it, if any.
  Batch take() {
    Item item;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty(); });
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    space_.notify_one();
    if (auto* error = std::get_if<std::exception_ptr>(&item)) std::rethrow_exception(*error);
    ++next_;
    return std::get<Batch>(std::move(item));
  }

 private:
  using Item = std::variant<Batch, std::exception_ptr>;
  const int64_t epoch_;
  int64_t next_;  // touched only by the consuming thread
  const int64_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<Item> queue_;
  bool cancelled_ = false;
  std::thread thread_;  // last: starts after every other member exists
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  if (!dataset_) fail("DataLoader: the dataset is null");
  if (options_.batch_size < 1) fail("DataLoader: batch_size must be at least 1, got {}", options_.batch_size);
  if (options_.prefetch < 0) fail("DataLoader: prefetch must be non-negative, got {}", options_.prefetch);
  if (dataset_->size() < 0) fail("DataLoader: the dataset reports a negative size {}", dataset_->size());
  state_.seed = options_.seed ? *options_.seed : RandomStream::from_global_generator().next_u64();
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), bs = options_.batch_size;
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

DataLoaderState DataLoader::state() const { return state_; }

void DataLoader::load_state(const DataLoaderState& state) {
  if (state.epoch < 0 || state.batch < 0 || state.batch > num_batches())
    fail("DataLoader::load_state: epoch {} batch {} is not a position in epochs of {} batches", state.epoch,
         state.batch, num_batches());
  stop_worker();
  state_ = state;
  order_epoch_ = -1;
}

StateDict DataLoader::state_dict() const {
  StateDict d;
  d.metadata = {{"seed", std::to_string(state_.seed)},
                {"epoch", std::to_string(state_.epoch)},
                {"batch", std::to_string(state_.batch)}};
  return d;
}

namespace {
// A non-negative integer from checkpoint metadata, or an error naming the key.
template <class T>
T metadata_integer(const StateDict& d, const char* key) {
  auto it = d.metadata.find(key);
  if (it == d.metadata.end()) fail("DataLoader::load_state_dict: the metadata has no '{}'", key);
  T value{};
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0)
    fail("DataLoader::load_state_dict: '{}' is '{}', not a non-negative integer", key, text);
  return value;
}
}  // namespace

void DataLoader::load_state_dict(const StateDict& d) {
  load_state({metadata_integer<uint64_t>(d, "seed"), metadata_integer<int64_t>(d, "epoch"),
              metadata_integer<int64_t>(d, "batch")});
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle) {
    // Fisher-Yates with our own unbiased draws: std::shuffle's output differs between standard libraries.
    RandomStream rng(mix_keys({state_.seed, static_cast<uint64_t>(epoch), kShuffleStream}));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  }
  return order;
}

// Runs on the worker thread. It reads only what stays fixed while a worker lives: dataset_, options_
// and state_.seed (load_state, the one writer of the seed, stops the worker first).
Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch) const {
  const int64_t begin = batch * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  std::vector<Example> examples;
  examples.reserve(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) {
    const int64_t index = order[static_cast<size_t>(i)];
    Example e = dataset_->get(index);
    if (options_.transform) {
      // Each example's augmentation depends only on (seed, epoch, index): reproducible and resumable.
      RandomStream rng(mix_keys(
          {state_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index), kTransformStream}));
      e.data = options_.transform->apply(e.data, rng);
    }
    examples.push_back(std::move(e));
  }
  return collate(examples);
}

void DataLoader::stop_worker() { worker_.reset(); }

std::optional<Batch> DataLoader::next() {
  if (state_.batch >= num_batches()) {
    stop_worker();
    ++state_.epoch;
    state_.batch = 0;
    return std::nullopt;
  }
  if (order_epoch_ != state_.epoch) {
    order_ = epoch_order(state_.epoch);
    order_epoch_ = state_.epoch;
  }
  Batch batch;
  if (options_.prefetch == 0) {
    batch = make_batch(order_, state_.epoch, state_.batch);
  } else {
    if (!worker_ || !worker_->serves(state_.epoch, state_.batch)) {
      stop_worker();
      worker_ = std::make_unique<Worker>(*this, std::make_shared<const std::vector<int64_t>>(order_),
                                         state_.epoch, state_.batch, options_.prefetch);
    }
    try {
      batch = worker_->take();
    } catch (...) {
      stop_worker();  // the worker stopped at the failure; a retry starts a fresh one at this batch
      throw;
    }
  }
  ++state_.batch;
  return batch;
}

DataLoader::Iterator::Iterator(DataLoader* loader) : loader_(loader), batch_(loader->next()) {}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  batch_ = loader_->next();
  return *this;
}

}  // namespace ember::data
