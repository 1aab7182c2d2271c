#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "devices/virtio/queue.h"
#include "tests/unit/devices/virtio_test_util.h"

namespace devices::virtio {
namespace {

using testing::MakeMemory;
using testing::TestRing;

constexpr uint64_t kRingBase = 0x100000;
constexpr uint64_t kData = 0x400000;
constexpr uint64_t kIndirectTable = 0x300000;

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : memory_(MakeMemory()), ring_(*memory_, 8, kRingBase) {}

  // Pops and expects the queue to reject the chain, with `counter` bumped.
  void ExpectRejected(Queue& queue, uint64_t Queue::Stats::*counter) {
    auto chain = queue.Pop();
    ASSERT_FALSE(chain.has_value()) << "chain accepted";
    EXPECT_TRUE(queue.broken());
    EXPECT_EQ(queue.stats().*counter, 1u) << chain.error().message();
    // A broken queue stays silent: no more chains, no more errors.
    ring_.Publish(0);
    auto again = queue.Pop();
    ASSERT_TRUE(again.has_value());
    EXPECT_FALSE(again->has_value());
  }

  std::unique_ptr<base::GuestMemory> memory_;
  TestRing ring_;
};

TEST_F(QueueTest, EmptyRingPopsNothing) {
  auto queue = ring_.MakeQueue();
  auto chain = queue->Pop();
  ASSERT_TRUE(chain.has_value());
  EXPECT_FALSE(chain->has_value());
}

TEST_F(QueueTest, ChainWithReadableThenWritableBuffersIsReturnedInOrder) {
  ring_.SetDesc(3, kData, 16, kDescNext, 5);
  ring_.SetDesc(5, kData + 0x100, 512, kDescNext | kDescWrite, 1);
  ring_.SetDesc(1, kData + 0x400, 1, kDescWrite);
  ring_.Publish(3);
  auto queue = ring_.MakeQueue();
  auto chain = queue->Pop();
  ASSERT_TRUE(chain.has_value() && chain->has_value());
  const DescriptorChain& c = **chain;
  EXPECT_EQ(c.head, 3);
  ASSERT_EQ(c.readable.size(), 1u);
  ASSERT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.readable[0].addr, kData);
  EXPECT_EQ(c.writable[1].addr, kData + 0x400);
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 513u);
  EXPECT_EQ(queue->stats().chains, 1u);
}

TEST_F(QueueTest, HeadIndexOutOfRangeIsRejected) {
  ring_.Publish(8);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::index_out_of_range);
}

TEST_F(QueueTest, NextIndexOutOfRangeIsRejected) {
  ring_.SetDesc(0, kData, 16, kDescNext, 0xffff);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::index_out_of_range);
}

TEST_F(QueueTest, LoopIsRejectedNotFollowed) {
  ring_.SetDesc(0, kData, 16, kDescNext, 1);
  ring_.SetDesc(1, kData, 16, kDescNext, 2);
  ring_.SetDesc(2, kData, 16, kDescNext, 0);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::loops);
}

TEST_F(QueueTest, SelfLoopIsRejected) {
  ring_.SetDesc(4, kData, 16, kDescNext, 4);
  ring_.Publish(4);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::loops);
}

TEST_F(QueueTest, LoopDetectionForgetsPreviousChains) {
  // The same descriptors reused by consecutive chains are not a loop.
  ring_.SetDesc(0, kData, 16, kDescNext, 1);
  ring_.SetDesc(1, kData, 16);
  auto queue = ring_.MakeQueue();
  for (int i = 0; i < 20; ++i) {
    ring_.Publish(0);
    auto chain = queue->Pop();
    ASSERT_TRUE(chain.has_value() && chain->has_value()) << i;
  }
}

TEST_F(QueueTest, BufferOutsideRamIsRejected) {
  ring_.SetDesc(0, testing::kTestRam - 8, 16);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::outside_ram);
}

TEST_F(QueueTest, BufferWrappingTheAddressSpaceIsRejected) {
  ring_.SetDesc(0, UINT64_MAX - 15, 64);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::outside_ram);
}

TEST_F(QueueTest, HugeLengthIsRejected) {
  ring_.SetDesc(0, kData, UINT32_MAX, kDescWrite);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::outside_ram);
}

TEST_F(QueueTest, ZeroLengthBufferIsRejected) {
  ring_.SetDesc(0, kData, 16, kDescNext, 1);
  ring_.SetDesc(1, kData, 0, kDescWrite);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::zero_length);
}

TEST_F(QueueTest, ReadableAfterWritableIsRejected) {
  ring_.SetDesc(0, kData, 16, kDescNext | kDescWrite, 1);
  ring_.SetDesc(1, kData, 16);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::wrong_direction);
}

TEST_F(QueueTest, AvailIndexFarAheadIsRejected) {
  ring_.SetAvailIdx(9);  // 9 > size 8
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::avail_overrun);
}

TEST_F(QueueTest, IndirectTableIsWalked) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, kDescNext, 1);
  ring_.SetDescAt(kIndirectTable, 1, kData + 0x100, 64, kDescNext | kDescWrite, 2);
  ring_.SetDescAt(kIndirectTable, 2, kData + 0x200, 1, kDescWrite, 0);
  ring_.SetDesc(2, kIndirectTable, 3 * 16, kDescIndirect);
  ring_.Publish(2);
  auto queue = ring_.MakeQueue();
  auto chain = queue->Pop();
  ASSERT_TRUE(chain.has_value() && chain->has_value()) << chain.error().message();
  EXPECT_EQ((*chain)->head, 2);
  EXPECT_EQ((*chain)->readable_bytes, 16u);
  EXPECT_EQ((*chain)->writable_bytes, 65u);
}

TEST_F(QueueTest, IndirectWithoutTheFeatureIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, 0, 0);
  ring_.SetDesc(0, kIndirectTable, 16, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue(/*event_idx=*/false, /*indirect=*/false);
  ExpectRejected(*queue, &Queue::Stats::bad_indirect);
}

TEST_F(QueueTest, IndirectWithNextIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, 0, 0);
  ring_.SetDesc(0, kIndirectTable, 16, kDescIndirect | kDescNext, 1);
  ring_.SetDesc(1, kData, 16);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::bad_indirect);
}

TEST_F(QueueTest, IndirectAfterADirectBufferIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, 0, 0);
  ring_.SetDesc(0, kData, 16, kDescNext, 1);
  ring_.SetDesc(1, kIndirectTable, 16, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::bad_indirect);
}

TEST_F(QueueTest, IndirectTableLengthNotAMultipleOf16IsRejected) {
  ring_.SetDesc(0, kIndirectTable, 17, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::bad_indirect);
}

TEST_F(QueueTest, EmptyIndirectTableIsRejected) {
  ring_.SetDesc(0, kIndirectTable, 0, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::bad_indirect);
}

TEST_F(QueueTest, IndirectInsideIndirectIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, kDescNext, 1);
  ring_.SetDescAt(kIndirectTable, 1, kIndirectTable + 0x1000, 16, kDescIndirect, 0);
  ring_.SetDescAt(kIndirectTable + 0x1000, 0, kData, 16, 0, 0);
  ring_.SetDesc(0, kIndirectTable, 32, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::nested_indirect);
}

TEST_F(QueueTest, IndirectTableOutsideRamIsRejected) {
  ring_.SetDesc(0, testing::kTestRam - 16, 32, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::outside_ram);
}

TEST_F(QueueTest, IndirectTableLongerThanTheQueueIsRejected) {
  ring_.SetDesc(0, kIndirectTable, 9 * 16, kDescIndirect);  // queue size 8
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::too_long);
}

TEST_F(QueueTest, LoopInsideIndirectTableIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, kDescNext, 1);
  ring_.SetDescAt(kIndirectTable, 1, kData, 16, kDescNext, 0);
  ring_.SetDesc(0, kIndirectTable, 32, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::loops);
}

TEST_F(QueueTest, IndirectNextOutsideTheTableIsRejected) {
  ring_.SetDescAt(kIndirectTable, 0, kData, 16, kDescNext, 2);  // table has 2 entries
  ring_.SetDesc(0, kIndirectTable, 32, kDescIndirect);
  ring_.Publish(0);
  auto queue = ring_.MakeQueue();
  ExpectRejected(*queue, &Queue::Stats::index_out_of_range);
}

TEST_F(QueueTest, AddUsedPublishesElementThenIndex) {
  ring_.SetDesc(6, kData, 16, kDescWrite);
  ring_.Publish(6);
  auto queue = ring_.MakeQueue();
  auto chain = queue->Pop();
  ASSERT_TRUE(chain.has_value() && chain->has_value());
  ASSERT_TRUE(queue->AddUsed(6, 12));
  EXPECT_EQ(ring_.UsedIdx(), 1);
  EXPECT_EQ(ring_.Used(0).id, 6u);
  EXPECT_EQ(ring_.Used(0).len, 12u);
}

TEST_F(QueueTest, IndicesWrapAroundSixteenBits) {
  ring_.SetDesc(0, kData, 16, kDescWrite);
  auto queue = ring_.MakeQueue();
  for (int i = 0; i < 70000; ++i) {
    ring_.Publish(0);
    auto chain = queue->Pop();
    ASSERT_TRUE(chain.has_value() && chain->has_value()) << i;
    ASSERT_TRUE(queue->AddUsed(0, 1));
  }
  EXPECT_EQ(ring_.UsedIdx(), static_cast<uint16_t>(70000));
  EXPECT_FALSE(queue->broken());
}

TEST_F(QueueTest, NoInterruptFlagSuppressesInterruptsWithoutEventIdx) {
  ring_.SetDesc(0, kData, 16, kDescWrite);
  auto queue = ring_.MakeQueue(/*event_idx=*/false);
  EXPECT_FALSE(queue->NeedsInterrupt()) << "nothing used yet";
  ring_.Publish(0);
  ASSERT_TRUE(queue->Pop());
  ASSERT_TRUE(queue->AddUsed(0, 1));
  ring_.SetAvailFlags(kAvailNoInterrupt);
  EXPECT_FALSE(queue->NeedsInterrupt());
  ring_.Publish(0);
  ASSERT_TRUE(queue->Pop());
  ASSERT_TRUE(queue->AddUsed(0, 1));
  ring_.SetAvailFlags(0);
  EXPECT_TRUE(queue->NeedsInterrupt());
}

TEST_F(QueueTest, UsedEventDecidesInterruptsWithEventIdx) {
  ring_.SetDesc(0, kData, 16, kDescWrite);
  auto queue = ring_.MakeQueue(/*event_idx=*/true);
  auto use_one = [&] {
    ring_.Publish(0);
    ASSERT_TRUE(queue->Pop());
    ASSERT_TRUE(queue->AddUsed(0, 1));
  };
  ring_.SetUsedEvent(2);  // interrupt when used idx passes 2 (i.e. reaches 3)
  use_one();              // used idx 1
  EXPECT_FALSE(queue->NeedsInterrupt());
  use_one();  // 2
  EXPECT_FALSE(queue->NeedsInterrupt());
  use_one();  // 3: crosses used_event
  EXPECT_TRUE(queue->NeedsInterrupt());
  use_one();  // 4: used_event still 2, already signalled
  EXPECT_FALSE(queue->NeedsInterrupt());
  // Two entries at once, used_event inside the batch.
  ring_.SetUsedEvent(4);
  use_one();
  use_one();  // 6, batch [4, 6) contains 4
  EXPECT_TRUE(queue->NeedsInterrupt());
}

TEST_F(QueueTest, EmptyPopPublishesAvailEventWithEventIdx) {
  ring_.SetDesc(0, kData, 16, kDescWrite);
  auto queue = ring_.MakeQueue(/*event_idx=*/true);
  ring_.Publish(0);
  ring_.Publish(0);
  ASSERT_TRUE(queue->PopOrEnableNotification());
  ASSERT_TRUE(queue->PopOrEnableNotification());
  auto none = queue->PopOrEnableNotification();
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(ring_.AvailEvent(), 2);
}

TEST_F(QueueTest, ActivateRejectsBadSizesAndRings) {
  Queue queue(8);
  queue.set_size(6);
  queue.set_desc_table(kRingBase);
  queue.set_avail_ring(kRingBase + 0x1000);
  queue.set_used_ring(kRingBase + 0x2000);
  EXPECT_FALSE(queue.Activate(*memory_, false, false)) << "size not a power of 2";
  queue.set_size(16);
  EXPECT_FALSE(queue.Activate(*memory_, false, false)) << "size above max";
  queue.set_size(8);
  queue.set_desc_table(kRingBase + 8);
  EXPECT_FALSE(queue.Activate(*memory_, false, false)) << "misaligned descriptor table";
  queue.set_desc_table(kRingBase);
  queue.set_used_ring(kRingBase + 0x2002);
  EXPECT_FALSE(queue.Activate(*memory_, false, false)) << "misaligned used ring";
  queue.set_used_ring(testing::kTestRam - 16);
  EXPECT_FALSE(queue.Activate(*memory_, false, false)) << "used ring outside RAM";
  EXPECT_FALSE(queue.active());
  queue.set_used_ring(kRingBase + 0x2000);
  EXPECT_TRUE(queue.Activate(*memory_, false, false));
}

TEST(Segments, ReadAndWriteSpanSegmentBoundaries) {
  auto memory = MakeMemory();
  const std::vector<Segment> segments = {{0x1000, 3}, {0x2000, 5}};
  const uint8_t data[6] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(WriteSegments(*memory, segments, 1, data));
  uint8_t back[6] = {};
  ASSERT_TRUE(ReadSegments(*memory, segments, 1, back));
  EXPECT_EQ(std::memcmp(data, back, 6), 0);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x1002), 2);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x2000), 3);
  uint8_t too_much[8] = {};
  EXPECT_FALSE(ReadSegments(*memory, segments, 1, too_much));
  EXPECT_EQ(SliceSegments(segments, 2, 2).size(), 2u);
}

}  // namespace
}  // namespace devices::virtio
