#pragma once
// Ranking the classes of a row by teacher logit, descending and stable (equal logits keep class
// order): PLD's O(C log C) step. A comparison sort of C ~ 1000 floats would cost more than all the
// rest of the loss, so this is a bucket sort, linear for real-valued logits:
//   1. each class becomes one integer, (order key of its logit) << 32 | class, so that comparing
//      two integers compares logits and breaks ties by class: stability for free;
//   2. bucket b = floor((max - t) / (max - min) * (B - 1)), B ~ 2-4 n buckets, is monotone in t
//      and puts about one item in a bucket for any smooth distribution of logits. Monotone means
//      that every item of a bucket sorts after every item of an earlier bucket (equal logits
//      share a bucket), so only items within one bucket can be out of order;
//   3. a counting sort places each item in its bucket's range and, in the same step, inserts it
//      into the bucket's items placed so far (an insertion sort per bucket, see place()). Most
//      buckets hold one or two items, so this is a compare and a conditional swap per item; the
//      rare item that must move further takes a branch. If that ever takes more than a few moves
//      per item (logits that cluster, or infinities), std::sort takes over, so the worst case is
//      O(n log n) and the result is always exactly the stable descending order.
// rank() is always inlined, so that its element-wise loops (keys, buckets, the prefix sum over the
// bucket counts, reading the result out) take the vector width of the kernel that calls it (see
// EMBER_VECTOR_CLONES in ops/cpu/vector_math.h). The two loops that stay scalar are the histogram
// and the placement, whose addresses depend on the data.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace ember::losses::cpu {

// An unsigned image of a float with the reverse order: a > b <=> descending_key(a) <
// descending_key(b) for non-NaN values. -0 and +0 map to the same key (they are equal, so they
// tie).
template <class T>
[[gnu::always_inline]] inline auto descending_key(T v) {
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
[[gnu::always_inline]] inline T value_of_key(std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t> key) {
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
  explicit Ranker(int64_t n) : items_(n), placed_(n + kFront), slot_(n), count_(kLanes * count_rows(n)) {}

  // Writes into order[0, n) the classes c != skip of values[0, count) (n = count - 1, or count
  // when skip < 0), by descending value, and, unless it is null, their values into ranked[0, n)
  // (read back from the sort keys: no gather). Values must not be NaN; hi and lo are their max
  // and min. count must not exceed the n the Ranker was built for.
  [[gnu::always_inline]] inline void rank(const T* values, int64_t count, int64_t skip, T hi, T lo,
                                          int32_t* order, T* ranked = nullptr) {
    const int64_t n = skip >= 0 ? count - 1 : count;
    if (n <= 0) return;
    const int64_t rows = count_rows(n), shift = std::countr_zero(static_cast<uint64_t>(rows));
    Item* items = items_.data();
    int32_t* slot = slot_.data();
    int32_t* counts = count_.data();
    // 1. the items, and 2. each one's bucket b, stored as its counter's index in the transposed
    // layout of prefix_sums(): lane b / rows, row b % rows. The classes before and after `skip`
    // are two plain loops that vectorise.
    const int64_t split = skip >= 0 ? skip : count;
    for (int64_t c = 0; c < split; ++c) items[c] = item_of(values[c], c);
    for (int64_t c = split + 1; c < count; ++c) items[c - 1] = item_of(values[c], c);
    // (hi - v) * scale lies in [0, B - 1] up to a relative rounding of a few ulps; the min keeps
    // a rounding up past B - 1 (possible near v = lo for large B) in range, and is monotone too.
    // The scale itself must be finite: a spread hi - lo below ~B * FLT_MIN / FLT_MAX (subnormal)
    // would make it infinite.
    const int32_t last = static_cast<int32_t>(kLanes * rows - 1);
    const T scale = static_cast<T>(last) / (hi - lo);
    if (hi > lo && std::isfinite(hi - lo) && std::isfinite(scale)) {
      const auto slot_of = [&](T v) {
        const int32_t b = std::min(static_cast<int32_t>((hi - v) * scale), last);
        return ((b & static_cast<int32_t>(rows - 1)) << kLaneBits) | (b >> shift);
      };
      for (int64_t c = 0; c < split; ++c) slot[c] = slot_of(values[c]);
      for (int64_t c = split + 1; c < count; ++c) slot[c - 1] = slot_of(values[c]);
    } else {  // all equal, or infinite logits: one bucket, and step 3 sorts (or finds it sorted)
      std::fill(slot, slot + n, 0);
    }
    // 3. counting sort: the histogram, each bucket's first position, then placement
    std::fill(counts, counts + kLanes * rows, 0);
    for (int64_t i = 0; i < n; ++i) ++counts[slot[i]];
    prefix_sums(counts, rows);
    const Item* sorted = place(n) ? placed_.data() + kFront : sort_fallback(n);
    for (int64_t i = 0; i < n; ++i) order[i] = index_of(sorted[i]);
    if (ranked)
      for (int64_t i = 0; i < n; ++i) ranked[i] = value_of_key<T>(static_cast<Key>(sorted[i] >> 32));
  }

 private:
  // The bucket counters, B = kLanes * rows of them, are stored transposed: bucket b at
  // counts[(b % rows) * kLanes + b / rows], so that one row of kLanes counters holds one bucket of
  // each of kLanes contiguous runs ("lanes") of buckets. The prefix sum over the B counters, a
  // serial chain of B dependent adds when run bucket by bucket, becomes kLanes chains that run
  // side by side in one vector register (see prefix_sums). 16 lanes: one AVX-512 register of
  // int32 (two AVX2 ones, four SSE2 ones).
  static constexpr int64_t kLanes = 16, kLaneBits = 4;
  // rows per lane: a power of two (so that b % rows and b / rows are a mask and a shift) with
  // B >= 2n: two buckets per item or more, half the collisions of one. At most 2^20, so that B <=
  // 2^24 and a float holds every bucket number exactly (rows of over 8M classes just get fuller
  // buckets).
  static int64_t count_rows(int64_t n) {
    const int64_t rows = (2 * std::max<int64_t>(n, 1) + kLanes - 1) / kLanes;
    return static_cast<int64_t>(
        std::bit_ceil(static_cast<uint64_t>(std::min<int64_t>(rows, int64_t(1) << 20))));
  }
  // key << 32 | class: 64 bits for float keys, 96 (in 128) for double keys
  using Key = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  using Item = std::conditional_t<sizeof(T) == 4, uint64_t, unsigned __int128>;
  [[gnu::always_inline]] static Item item_of(T value, int64_t c) {
    return (static_cast<Item>(descending_key(value)) << 32) | static_cast<Item>(c);
  }
  [[gnu::always_inline]] static int32_t index_of(Item item) {
    return static_cast<int32_t>(item & 0xffffffffu);
  }

  // counts[] from bucket sizes to each bucket's first position (an exclusive prefix sum in bucket
  // order). First every lane's own prefix sum, all lanes at once, row by row (written with GCC's
  // vector extension: left to itself GCC keeps the 16 running totals in scalar registers); then
  // each lane adds the total of the lanes before it.
  [[gnu::always_inline]] static void prefix_sums(int32_t* counts, int64_t rows) {
    using Lanes = int32_t __attribute__((vector_size(kLanes * sizeof(int32_t))));
    Lanes total = {}, size;
    for (int64_t r = 0; r < rows; ++r) {
      int32_t* row = counts + r * kLanes;
      std::memcpy(&size, row, sizeof size);
      std::memcpy(row, &total, sizeof total);
      total += size;
    }
    Lanes before;
    int32_t sum = 0;
    for (int64_t l = 0; l < kLanes; ++l) {
      before[l] = sum;
      sum += total[l];
    }
    for (int64_t r = 0; r < rows; ++r) {
      int32_t* row = counts + r * kLanes;
      std::memcpy(&size, row, sizeof size);
      size += before;
      std::memcpy(row, &size, sizeof size);
    }
  }

  // Places every item at its bucket's next position in a[0, n) (a = placed_ + kFront) and
  // insertion-sorts it into the items of its bucket placed before it. The insertion needs no
  // bucket bounds: a[] starts zeroed, and 0 is below every item (the smallest key, +inf's, is not
  // 0), so every position left of a bucket holds either an item of an earlier bucket or 0, both
  // below every item of the bucket, and the insertion stops there by itself (at worst on the zeros
  // in front of a[0]). Returns false, leaving a[] unfinished, when the insertions have moved more
  // than a few items per item.
  [[gnu::always_inline]] bool place(int64_t n) {
    Item* a = placed_.data() + kFront;
    std::fill(placed_.begin(), placed_.begin() + kFront + n, Item(0));
    const Item* items = items_.data();
    const int32_t* slot = slot_.data();
    int32_t* next = count_.data();
    int64_t budget = 8 * n;  // long moves allowed before the insertion sort gives up
    for (int64_t i = 0; i < n; ++i) {
      const Item item = items[i];
      const int64_t p = next[slot[i]]++;
      // The first step is branch-free: a conditional swap with the left neighbour, which resolves
      // almost every item. (Left of a bucket's first position lies a smaller item, or a zero: no
      // swap.)
      const Item left = a[p - 1];
      const bool swap = item < left;
      a[p - 1] = swap ? item : left;
      a[p] = swap ? left : item;
      // The rare item that belongs further left. (Only a swapped item can: without a swap,
      // a[p - 2] <= a[p - 1] <= item, or a[p - 2] lies left of the bucket. Testing `swap` first
      // would make GCC branch on it, a coin flip in crowded buckets.)
      if (item < a[p - 2]) {
        int64_t j = p - 1;
        for (; item < a[j - 1]; --j) a[j] = a[j - 1];
        a[j] = item;
        budget -= p - 1 - j;
        if (budget < 0) return false;
      }
    }
    return true;
  }

  // The worst case: a comparison sort of the items (all distinct, so any sort is stable here).
  const Item* sort_fallback(int64_t n) {
    std::sort(items_.begin(), items_.begin() + n);
    return items_.data();
  }

  static constexpr int64_t kFront = 2;  // zeros in front of placed_'s items: a[-1] and a[-2] exist
  std::vector<Item> items_, placed_;
  std::vector<int32_t> slot_, count_;
};

}  // namespace ember::losses::cpu
