#pragma once
// RandomStream: a small counter-based (Philox4x32-10) stream of random numbers for data pipelines.
// A stream is a pure function of its key, so the DataLoader can give example i of epoch e its own
// stream keyed by (seed, e, i): shuffles and augmentations then do not depend on threads, on the
// order batches are prepared in, or on whether the run was resumed from a checkpoint.
#include <cstdint>
#include <initializer_list>

namespace ember::data {

class RandomStream {
 public:
  explicit RandomStream(uint64_t key) : key_(key) {}
  // A stream keyed by the global generator (ember::manual_seed makes it reproducible); advances
  // the global generator by one draw.
  static RandomStream from_global_generator();

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();            // in [0, 1)
  uint64_t below(uint64_t n);  // uniform integer in [0, n), without modulo bias; n >= 1

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
  uint32_t block_[4] = {0, 0, 0, 0};
  int used_ = 4;  // words of block_ already handed out
};

// Mixes several 64-bit values into one well-scrambled key (splitmix64 on each step).
uint64_t mix_keys(std::initializer_list<uint64_t> values);

}  // namespace ember::data
