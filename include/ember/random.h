#pragma once
// One global generator: Philox4x32-10, a counter-based RNG. Element i of a random op draws from
// counter (offset + i), so results do not depend on how the work is split across threads, and
// the CUDA backend can produce the same stream.
#include <cstdint>

namespace ember {
void manual_seed(uint64_t seed);
uint64_t initial_seed();

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in 128-bit Philox blocks already used
};
GeneratorState get_rng_state();
void set_rng_state(const GeneratorState& state);
}  // namespace ember
