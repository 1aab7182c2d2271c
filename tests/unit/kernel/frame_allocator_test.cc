#include "kernel/frame_allocator.h"

#include <gtest/gtest.h>

#include <set>

#include "fake_phys.h"

namespace {

using kernel::FrameAllocator;
using kernel::kPageSize;

TEST(FrameAllocator, RangesShrinkToWholeFramesAndSkipFrameZero) {
  kernel_test::FakePhys phys(64);
  FrameAllocator fa(&phys);
  ASSERT_TRUE(fa.AddRange(0, 3 * kPageSize));                  // frame 0 dropped
  ASSERT_TRUE(fa.AddRange(5 * kPageSize + 1, 2 * kPageSize));  // only frame 6 is whole
  EXPECT_EQ(fa.total_frames(), 3u);
  EXPECT_EQ(fa.Alloc(), 1 * kPageSize);
  EXPECT_EQ(fa.Alloc(), 2 * kPageSize);
  EXPECT_EQ(fa.Alloc(), 6 * kPageSize);
  EXPECT_EQ(fa.Alloc(), 0u);  // exhausted
  EXPECT_EQ(fa.free_frames(), 0u);
}

TEST(FrameAllocator, ZeroSizeAndWrappingRanges) {
  kernel_test::FakePhys phys(4);
  FrameAllocator fa(&phys);
  EXPECT_TRUE(fa.AddRange(0x1000, 0));
  EXPECT_TRUE(fa.AddRange(UINT64_MAX - 0x800, 0x1000));  // no whole frame, no crash
  EXPECT_EQ(fa.total_frames(), 0u);
}

TEST(FrameAllocator, ReserveSplitsARange) {
  kernel_test::FakePhys phys(64);
  FrameAllocator fa(&phys);
  ASSERT_TRUE(fa.AddRange(kPageSize, 10 * kPageSize));     // frames 1..10
  ASSERT_TRUE(fa.Reserve(4 * kPageSize + 10, kPageSize));  // grows to frames 4..5
  EXPECT_EQ(fa.total_frames(), 8u);
  std::set<uint64_t> got;
  for (uint64_t f; (f = fa.Alloc()) != 0;) got.insert(f / kPageSize);
  EXPECT_EQ(got, (std::set<uint64_t>{1, 2, 3, 6, 7, 8, 9, 10}));
}

TEST(FrameAllocator, ReserveWholeRangeAndFront) {
  kernel_test::FakePhys phys(64);
  FrameAllocator fa(&phys);
  ASSERT_TRUE(fa.AddRange(kPageSize, 4 * kPageSize));       // 1..4
  ASSERT_TRUE(fa.AddRange(16 * kPageSize, 4 * kPageSize));  // 16..19
  ASSERT_TRUE(fa.Reserve(0, 5 * kPageSize));                // all of the first
  ASSERT_TRUE(fa.Reserve(16 * kPageSize, kPageSize));       // front of the second
  EXPECT_EQ(fa.total_frames(), 3u);
  EXPECT_EQ(fa.Alloc(), 17 * kPageSize);
}

TEST(FrameAllocator, FreedFramesAreReusedFirst) {
  kernel_test::FakePhys phys(64);
  FrameAllocator fa(&phys);
  ASSERT_TRUE(fa.AddRange(kPageSize, 8 * kPageSize));
  const uint64_t a = fa.Alloc(), b = fa.Alloc();
  fa.Free(a);
  fa.Free(b);
  EXPECT_EQ(fa.free_frames(), 8u);
  EXPECT_EQ(fa.Alloc(), b);  // LIFO
  EXPECT_EQ(fa.Alloc(), a);
  EXPECT_EQ(fa.Alloc(), 3 * kPageSize);
}

TEST(FrameAllocator, FreeIgnoresZeroAndMisaligned) {
  kernel_test::FakePhys phys(8);
  FrameAllocator fa(&phys);
  fa.Free(0);
  fa.Free(kPageSize + 8);
  EXPECT_EQ(fa.free_frames(), 0u);
  EXPECT_EQ(fa.Alloc(), 0u);
}

TEST(FrameAllocator, RangeTableFull) {
  kernel_test::FakePhys phys(8);
  FrameAllocator fa(&phys);
  for (size_t i = 0; i < FrameAllocator::kMaxRanges; ++i) {
    ASSERT_TRUE(fa.AddRange((2 * i + 1) * kPageSize, kPageSize));
  }
  EXPECT_FALSE(fa.AddRange(0x100000, kPageSize));
  EXPECT_EQ(fa.total_frames(), FrameAllocator::kMaxRanges);
}

}  // namespace
