#pragma once
// Ranking the classes of a row by teacher logit, descending and stable (equal logits keep class
// order): PLD's O(C log C) step. A comparison sort of C ~ 1000 floats would cost more than all the
// rest of the loss, so this is a bucket sort, linear for real-valued logits:
//   1. each class becomes one integer, (order key of its logit) << 32 | class, so that comparing
//      two integers compares logits and breaks ties by class: stability for free;
//   2. bucket b = floor((max - t) / (max - min) * (2n - 1)) is monotone in t and puts about one
//      item in a bucket for any smooth distribution of logits; a counting sort by bucket leaves
//      each item at most a few places from home;
//   3. an insertion sort finishes the job. Its first step is branch-free (a conditional swap with
//      the left neighbour, which resolves almost every item); only the rare item that must move
//      further takes a branch. If that ever takes more than a few moves per item (logits that
//      cluster, or infinities), std::sort takes over, so the worst case is O(n log n) and the
//      result is always exactly the stable descending order.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace ember::losses::cpu {

// An unsigned image of a float with the reverse order: a > b <=> descending_key(a) <
// descending_key(b) for non-NaN values. -0 and +0 map to the same key (they are equal, so they
// tie).
template <class T>
auto descending_key(T v) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr U kSign = U(1) << (sizeof(U) * 8 - 1);
  const U bits = std::bit_cast<U>(static_cast<T>(v + T(0)));  // -0 + 0 = +0
  // ascending order: flip every bit of a negative value, only the sign bit of a positive one
  // (branch-free: the sign of a random logit is a coin flip for the branch predictor)
  const U flip = static_cast<U>(U(0) - (bits >> (sizeof(U) * 8 - 1))) | kSign;
  return static_cast<U>(~(bits ^ flip));
}

// descending_key's inverse (-0 comes back as +0, which it equals).
template <class T>
T value_of_key(std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t> key) {
  using U = decltype(key);
  constexpr U kSign = U(1) << (sizeof(U) * 8 - 1);
  // a key with the top bit set came from a negative value, whose bits it kept; otherwise every bit
  // but the sign was flipped
  const U unflip = static_cast<U>((key >> (sizeof(U) * 8 - 1)) - 1) & static_cast<U>(~kSign);
  return std::bit_cast<T>(static_cast<U>(key ^ unflip));
}

template <class T>
class Ranker {
 public:
  explicit Ranker(int64_t n) : items_(n), sorted_(n), bucket_(n), count_(bucket_count(n) + 1) {}

  // Writes into order[0, n) the classes c != skip of values[0, count) (n = count - 1, or count
  // when skip < 0), by descending value, and, unless it is null, their values into ranked[0, n)
  // (read back from the sort keys: no gather). Values must not be NaN; hi and lo are their max
  // and min.
  void rank(const T* values, int64_t count, int64_t skip, T hi, T lo, int32_t* order, T* ranked = nullptr) {
    const int64_t n = skip >= 0 ? count - 1 : count;
    if (n <= 0) return;
    // the classes before and after `skip`, as two plain loops that vectorise
    const int64_t split = skip >= 0 ? skip : count;
    for (int64_t c = 0; c < split; ++c) items_[c] = item_of(values[c], c);
    for (int64_t c = split + 1; c < count; ++c) items_[c - 1] = item_of(values[c], c);
    const int64_t buckets = bucket_count(n);
    if (hi > lo && std::isfinite(hi - lo)) {
      // (hi - v) * scale lies in [0, buckets - 1] up to a relative rounding of a few ulps, far
      // below 1 for buckets <= 2^24, so the truncation is always a valid bucket
      const T scale = static_cast<T>(buckets - 1) / (hi - lo);
      for (int64_t c = 0; c < split; ++c) bucket_[c] = static_cast<int32_t>((hi - values[c]) * scale);
      for (int64_t c = split + 1; c < count; ++c)
        bucket_[c - 1] = static_cast<int32_t>((hi - values[c]) * scale);
    } else {  // all equal, or infinite logits: one bucket, and step 3 sorts (or finds it sorted)
      std::fill(bucket_.begin(), bucket_.begin() + n, 0);
    }
    std::fill(count_.begin(), count_.begin() + buckets + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++count_[bucket_[i] + 1];
    for (int64_t b = 0; b < buckets; ++b) count_[b + 1] += count_[b];
    for (int64_t i = 0; i < n; ++i) sorted_[count_[bucket_[i]]++] = items_[i];
    finish(n);
    for (int64_t i = 0; i < n; ++i) order[i] = index_of(sorted_[i]);
    if (ranked)
      for (int64_t i = 0; i < n; ++i) ranked[i] = value_of_key<T>(static_cast<Key>(sorted_[i] >> 32));
  }

 private:
  // Two buckets per item: half the collisions of one, for a prefix sum over 2n counters. At most
  // 2^24, so that a float holds every bucket number exactly (rows of over 8M classes just get
  // fuller buckets).
  static int64_t bucket_count(int64_t n) {
    return std::max<int64_t>(1, std::min<int64_t>(2 * n, int64_t(1) << 24));
  }
  // key << 32 | class: 64 bits for float keys, 96 (in 128) for double keys
  using Key = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  using Item = std::conditional_t<sizeof(T) == 4, uint64_t, unsigned __int128>;
  static Item item_of(T value, int64_t c) {
    return (static_cast<Item>(descending_key(value)) << 32) | static_cast<Item>(c);
  }
  static int32_t index_of(Item item) { return static_cast<int32_t>(item & 0xffffffffu); }

  void finish(int64_t n) {
    Item* a = sorted_.data();
    int64_t budget = 8 * n;  // long moves allowed before the insertion sort gives up
    Item left = a[0];        // a[i - 1], kept in a register rather than reloaded
    for (int64_t i = 1; i < n; ++i) {
      const Item item = a[i];
      const bool swap = item < left;
      const Item low = swap ? item : left, high = swap ? left : item;
      a[i - 1] = low;
      a[i] = high;
      // Without a swap low = a[i - 1] >= a[i - 2] already; so this is the rare item that belongs
      // further left.
      if (i >= 2 && low < a[i - 2]) {
        int64_t j = i - 1;
        for (; j > 0 && low < a[j - 1]; --j) a[j] = a[j - 1];
        a[j] = low;
        budget -= i - 1 - j;
        if (budget < 0) {
          std::sort(a, a + n);  // the items are distinct, so any sort is stable here
          return;
        }
      }
      left = high;
    }
  }

  std::vector<Item> items_, sorted_;
  std::vector<int32_t> bucket_, count_;
};

}  // namespace ember::losses::cpu
