#include <gtest/gtest.h>

#include "vmm/base/error.h"
#include "vmm/base/guest_memory.h"

namespace vmm {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return MakeError(ErrorKind::kConfig, "{} is odd", value);
  return value / 2;
}

Result<int> Quarter(int value) {
  int half = TRY_CTX(Half(value), "quarter");
  return TRY(Half(half));
}

TEST(Error, TryPropagatesWithContext) {
  EXPECT_EQ(*Quarter(8), 2);
  auto result = Quarter(6);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message(), "3 is odd");
  auto odd = Quarter(3);
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message(), "quarter: 3 is odd");
  EXPECT_EQ(odd.error().exit_status(), 78);
}

TEST(Error, ErrnoIsAppended) {
  errno = ENOENT;
  Error error = MakeErrnoError(ErrorKind::kNoInput, "open {}", "/x").error();
  EXPECT_EQ(error.ToString(), "open /x: No such file or directory");
}

TEST(ParseSize, AcceptsSuffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 64 * KiB);
  EXPECT_EQ(*ParseSize("512m"), 512 * MiB);
  EXPECT_EQ(*ParseSize("2G"), 2 * GiB);
  EXPECT_EQ(*ParseSize("1GiB"), 1 * GiB);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("M"));
  EXPECT_FALSE(ParseSize("12Q"));
  EXPECT_FALSE(ParseSize("-1"));
  EXPECT_FALSE(ParseSize("99999999999999999999"));
  auto big = ParseSize("17179869184G");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind(), ErrorKind::kUsage);
}

TEST(GuestMemory, SmallRamIsOneRegion) {
  auto memory = GuestMemory::Create(16 * MiB);
  ASSERT_TRUE(memory) << memory.error().ToString();
  ASSERT_EQ((*memory)->regions().size(), 1u);
  EXPECT_EQ((*memory)->regions()[0].guest_phys, 0u);
}

TEST(GuestMemory, LargeRamSplitsAroundTheHole) {
  auto memory = GuestMemory::Create(4 * GiB);
  ASSERT_TRUE(memory) << memory.error().ToString();
  auto regions = (*memory)->regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].size, kMmioHoleStart);
  EXPECT_EQ(regions[1].guest_phys, kMmioHoleEnd);
  EXPECT_EQ(regions[1].size, 1 * GiB);
  EXPECT_FALSE((*memory)->Contains(kMmioHoleStart, 1));
  EXPECT_FALSE((*memory)->Contains(kMmioHoleStart - 1, 2));  // straddles into the hole
  EXPECT_TRUE((*memory)->Contains(kMmioHoleEnd, 1 * GiB));
}

TEST(GuestMemory, RejectsBadSizes) {
  EXPECT_FALSE(GuestMemory::Create(0));
  EXPECT_FALSE(GuestMemory::Create(4097));
}

TEST(GuestMemory, AccessorChecksBoundsAndOverflow) {
  auto memory = std::move(*GuestMemory::Create(1 * MiB));
  EXPECT_TRUE(memory->WriteObj<uint32_t>(0x1000, 0xdeadbeef));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(0x1000), 0xdeadbeefu);
  EXPECT_TRUE(memory->Contains(1 * MiB, 0));
  EXPECT_TRUE(memory->Span(1 * MiB - 4, 4));
  EXPECT_FALSE(memory->Span(1 * MiB - 3, 4));
  EXPECT_FALSE(memory->Span(UINT64_MAX, 2));
  EXPECT_FALSE(memory->Span(8, UINT64_MAX));
  EXPECT_FALSE(memory->Span(UINT64_MAX - 1, UINT64_MAX));
  EXPECT_FALSE(memory->Fill(1 * MiB, 0, 1));
}

}  // namespace
}  // namespace vmm
