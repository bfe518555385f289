#include "ember/data/random_stream.h"

#include "core/philox.h"
#include "ember/error.h"
#include "ops/kernels/random.h"

namespace ember::data {
namespace {
// splitmix64's finaliser: a bijection that spreads every input bit over the whole output.
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t mix_keys(std::initializer_list<uint64_t> values) {
  uint64_t h = 0x6A09E667F3BCC908ULL;
  for (uint64_t v : values) h = splitmix64(h ^ splitmix64(v));
  return h;
}

RandomStream RandomStream::from_global_generator() {
  uint64_t seed = 0;
  uint64_t offset = reserve_random_offset(1, &seed);
  return RandomStream(mix_keys({seed, offset}));
}

uint32_t RandomStream::next_u32() {
  if (used_ == 4) {
    Philox4 r = philox4x32(counter_++, key_);
    for (int i = 0; i < 4; ++i) block_[i] = r.v[i];
    used_ = 0;
  }
  return block_[used_++];
}

uint64_t RandomStream::next_u64() {
  uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double RandomStream::uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

uint64_t RandomStream::below(uint64_t n) {
  if (n == 0) fail("RandomStream::below: the range [0, n) is empty (n = 0)");
  // Reject the top (2^64 mod n) values so that every residue is equally likely.
  uint64_t threshold = (0 - n) % n;  // == 2^64 mod n
  for (;;) {
    uint64_t r = next_u64();
    if (r >= threshold) return r % n;
  }
}

}  // namespace ember::data
