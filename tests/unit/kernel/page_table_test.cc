#include "kernel/page_table.h"

#include <gtest/gtest.h>

#include "fake_phys.h"

namespace {

using kernel::PageTable;
namespace pte = kernel::pte;

class PageTableTest : public ::testing::Test {
 protected:
  PageTableTest() : phys_(256), root_(phys_.AllocZeroed()), pt_(&phys_, &phys_, root_) {}
  kernel_test::FakePhys phys_;
  uint64_t root_;
  PageTable pt_;
};

constexpr uint64_t kRw = pte::kWrite | pte::kNoExecute | pte::kUser;

TEST_F(PageTableTest, MapThenLookupThenUnmap) {
  ASSERT_EQ(pt_.Map(0x400000, 0x5000, kRw), PageTable::Status::kOk);
  uint64_t size = 0;
  const uint64_t e = pt_.Lookup(0x400123, &size);
  EXPECT_EQ(e & pte::kAddressMask, 0x5000u);
  EXPECT_EQ(size, kernel::kPageSize);
  EXPECT_NE(e & pte::kUser, 0u);
  EXPECT_NE(e & pte::kNoExecute, 0u);
  EXPECT_EQ(pt_.Unmap(0x400000) & pte::kAddressMask, 0x5000u);
  EXPECT_EQ(pt_.Lookup(0x400000), 0u);
  EXPECT_EQ(pt_.Unmap(0x400000), 0u);
}

TEST_F(PageTableTest, IntermediateTablesShared) {
  const int64_t before = phys_.live();
  ASSERT_EQ(pt_.Map(0x400000, 0x5000, kRw), PageTable::Status::kOk);
  EXPECT_EQ(phys_.live() - before, 3);  // PDPT, PD, PT
  ASSERT_EQ(pt_.Map(0x401000, 0x6000, kRw), PageTable::Status::kOk);
  EXPECT_EQ(phys_.live() - before, 3);
}

TEST_F(PageTableTest, WritableAndExecutableRefused) {
  EXPECT_EQ(pt_.Map(0x400000, 0x5000, pte::kWrite), PageTable::Status::kWriteExec);
  EXPECT_EQ(pt_.Map(0x400000, 0x5000, 0), PageTable::Status::kOk);  // read-only executable is fine
}

TEST_F(PageTableTest, BadAddressesRefused) {
  EXPECT_EQ(pt_.Map(0x0000800000000000, 0x5000, kRw),
            PageTable::Status::kBadAddress);                                      // non-canonical
  EXPECT_EQ(pt_.Map(0x400001, 0x5000, kRw), PageTable::Status::kBadAddress);      // misaligned va
  EXPECT_EQ(pt_.Map(0x400000, 0x5001, kRw), PageTable::Status::kBadAddress);      // misaligned pa
  EXPECT_EQ(pt_.Map(0x400000, 1ull << 52, kRw), PageTable::Status::kBadAddress);  // pa too wide
  EXPECT_EQ(pt_.Map(0x400000, 0x5000, kRw, 0x3000), PageTable::Status::kBadAddress);  // odd size
  EXPECT_EQ(pt_.Lookup(0x0000800000000000), 0u);
}

TEST_F(PageTableTest, DoubleMapRefused) {
  ASSERT_EQ(pt_.Map(0x400000, 0x5000, kRw), PageTable::Status::kOk);
  EXPECT_EQ(pt_.Map(0x400000, 0x6000, kRw), PageTable::Status::kAlreadyMapped);
}

TEST_F(PageTableTest, HugePages) {
  ASSERT_EQ(pt_.Map(0xffff800000000000, 0, pte::kWrite | pte::kNoExecute, kernel::kPage1G),
            PageTable::Status::kOk);
  ASSERT_EQ(pt_.Map(0xffff800040000000, 0x40000000, pte::kWrite | pte::kNoExecute, kernel::kPage2M),
            PageTable::Status::kOk);
  uint64_t size = 0;
  EXPECT_EQ(pt_.Lookup(0xffff800012345678, &size) & pte::kAddressMask, 0u);
  EXPECT_EQ(size, kernel::kPage1G);
  EXPECT_NE(pt_.Lookup(0xffff800040100000, &size) & pte::kHuge, 0u);
  EXPECT_EQ(size, kernel::kPage2M);
  // A 4 KiB page under a 1 GiB page cannot be mapped.
  EXPECT_EQ(pt_.Map(0xffff800000001000, 0x5000, kRw), PageTable::Status::kHugeInTheWay);
}

TEST_F(PageTableTest, FreeRangeReturnsTablesAndOwnedFrames) {
  const int64_t before = phys_.live();
  const uint64_t owned = phys_.AllocZeroed();
  ASSERT_EQ(pt_.Map(0x400000, owned, kRw | pte::kOwned), PageTable::Status::kOk);
  ASSERT_EQ(pt_.Map(0x7fff00000000, 0x9000, kRw), PageTable::Status::kOk);  // not owned
  ASSERT_EQ(pt_.Map(0xffff800000000000, 0, pte::kWrite | pte::kNoExecute, kernel::kPage2M),
            PageTable::Status::kOk);
  pt_.FreeRange(0, 255);
  EXPECT_EQ(pt_.Lookup(0x400000), 0u);
  EXPECT_NE(pt_.Lookup(0xffff800000000000), 0u);  // upper half untouched
  EXPECT_EQ(phys_.live() - before, 2);            // the upper half keeps its PDPT and PD
}

TEST_F(PageTableTest, MapRangeCrossesLeafTables) {
  // 600 pages starting 10 pages before a 2 MiB boundary: two page tables.
  const uint64_t va = 0x400000 - 10 * kernel::kPageSize;
  ASSERT_EQ(pt_.MapRange(va, 0x100000, 600 * kernel::kPageSize, kRw), PageTable::Status::kOk);
  for (uint64_t i = 0; i < 600; ++i) {
    ASSERT_EQ(pt_.Lookup(va + i * kernel::kPageSize) & pte::kAddressMask,
              0x100000 + i * kernel::kPageSize);
  }
  EXPECT_EQ(pt_.Lookup(va + 600 * kernel::kPageSize), 0u);
  EXPECT_EQ(pt_.Lookup(va - kernel::kPageSize), 0u);
}

TEST_F(PageTableTest, MapRangeHugeAndErrors) {
  ASSERT_EQ(pt_.MapRange(0xffff800000000000, 0, 1ull << 32, pte::kWrite | pte::kNoExecute,
                         kernel::kPage2M),
            PageTable::Status::kOk);
  uint64_t size = 0;
  EXPECT_EQ(pt_.Lookup(0xffff8000fee00000, &size) & pte::kAddressMask, 0xfee00000u);
  EXPECT_EQ(size, kernel::kPage2M);
  EXPECT_EQ(pt_.MapRange(0x400000, 0, 0, kRw), PageTable::Status::kOk);  // empty
  EXPECT_EQ(pt_.MapRange(0x400000, 0, 0x1800, kRw), PageTable::Status::kBadAddress);
  EXPECT_EQ(pt_.MapRange(0x00007ffffffff000, 0, 0x2000, kRw), PageTable::Status::kBadAddress);
  EXPECT_EQ(pt_.MapRange(0x400000, 0, 0x2000, pte::kWrite), PageTable::Status::kWriteExec);
  ASSERT_EQ(pt_.Map(0x401000, 0x9000, kRw), PageTable::Status::kOk);
  EXPECT_EQ(pt_.MapRange(0x400000, 0, 0x2000, kRw), PageTable::Status::kAlreadyMapped);
}

TEST_F(PageTableTest, OutOfMemory) {
  kernel_test::FakePhys tiny(2);  // room for the root only
  const uint64_t root = tiny.AllocZeroed();
  PageTable pt(&tiny, &tiny, root);
  EXPECT_EQ(pt.Map(0x400000, 0x5000, kRw), PageTable::Status::kNoMemory);
}

TEST(PageTable, Canonical) {
  EXPECT_TRUE(kernel::IsCanonical(0));
  EXPECT_TRUE(kernel::IsCanonical(0x00007fffffffffff));
  EXPECT_FALSE(kernel::IsCanonical(0x0000800000000000));
  EXPECT_TRUE(kernel::IsCanonical(0xffff800000000000));
  EXPECT_FALSE(kernel::IsCanonical(0xfff0000000000000));
}

}  // namespace
