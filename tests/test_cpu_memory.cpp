// The CPU allocator's cache of freed blocks (core/cpu_block_cache.h): a freed block of 64 KiB or
// more is reused by the next allocation of the same size, smaller blocks are left to malloc, and
// memory_stats() counts cached bytes apart from the bytes in use.
#include <ember/ember.h>
#include <gtest/gtest.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace ember {
namespace {

constexpr int64_t kFloats = int64_t{1} << 18;  // a 1 MiB block
constexpr int64_t kBytes = kFloats * 4;

TEST(CpuMemory, FreedBlockIsReusedForTheSameSize) {
  const void* first;
  {
    Tensor a = empty({kFloats});
    first = a.raw_data();
  }
  const MemoryStats after_free = cpu::memory_stats();
  EXPECT_GE(after_free.cached_bytes, kBytes);
  Tensor b = empty({kFloats});
  EXPECT_EQ(b.raw_data(), first);
  EXPECT_EQ(cpu::memory_stats().cached_bytes, after_free.cached_bytes - kBytes);
  // A reused block is an ordinary allocation: an op that fills it overwrites the old contents.
  b.fill_(3.0);
  b = Tensor();
  Tensor c = zeros({kFloats});
  EXPECT_EQ(c.raw_data(), first);
  EXPECT_EQ(c.sum().item<float>(), 0.0f);
}

TEST(CpuMemory, InUseBytesDoNotCountTheCache) {
  const MemoryStats before = cpu::memory_stats();
  {
    Tensor a = empty({kFloats});
    EXPECT_EQ(cpu::memory_stats().current_bytes, before.current_bytes + kBytes);
  }
  EXPECT_EQ(cpu::memory_stats().current_bytes, before.current_bytes);
  EXPECT_GE(cpu::memory_stats().cached_bytes, kBytes);
}

TEST(CpuMemory, CachedBlocksArePoisonedUnderAddressSanitizer) {
#if defined(__SANITIZE_ADDRESS__)
  const char* block;
  {
    Tensor a = empty({kFloats});
    block = static_cast<const char*>(a.raw_data());
    EXPECT_FALSE(__asan_address_is_poisoned(block));
  }
  // Freed into the cache: any access through the dangling pointer is a use after free.
  EXPECT_TRUE(__asan_address_is_poisoned(block));
  EXPECT_TRUE(__asan_address_is_poisoned(block + kBytes - 1));
  Tensor b = empty({kFloats});  // the same block, live again
  ASSERT_EQ(static_cast<const char*>(b.raw_data()), block);
  EXPECT_FALSE(__asan_address_is_poisoned(block));
  EXPECT_FALSE(__asan_address_is_poisoned(block + kBytes - 1));
#else
  GTEST_SKIP() << "an AddressSanitizer build checks this (scripts/test.sh's second pass)";
#endif
}

TEST(CpuMemory, SmallBlocksAreNotCached) {
  const int64_t cached = cpu::memory_stats().cached_bytes;
  { Tensor a = empty({1000}); }  // 4000 bytes
  EXPECT_EQ(cpu::memory_stats().cached_bytes, cached);
}

}  // namespace
}  // namespace ember
