#include "vmm/console/ring_buffer.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>

namespace vmm {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(RingBuffer, KeepsEverythingBelowCapacity) {
  RingBuffer ring(8);
  ring.Append(Bytes("abc"));
  ring.Append(Bytes("de"));
  EXPECT_EQ(ring.Contents(), Bytes("abcde"));
  EXPECT_EQ(ring.size(), 5u);
}

TEST(RingBuffer, WrapKeepsNewestBytesInOrder) {
  RingBuffer ring(8);
  ring.Append(Bytes("abcdef"));
  ring.Append(Bytes("ghij"));  // wraps: "ab" overwritten
  EXPECT_EQ(ring.Contents(), Bytes("cdefghij"));
  ring.Append(Bytes("k"));
  EXPECT_EQ(ring.Contents(), Bytes("defghijk"));
}

TEST(RingBuffer, AppendLargerThanCapacityKeepsTail) {
  RingBuffer ring(4);
  ring.Append(Bytes("x"));
  ring.Append(Bytes("0123456789"));
  EXPECT_EQ(ring.Contents(), Bytes("6789"));
  ring.Append(Bytes("ab"));
  EXPECT_EQ(ring.Contents(), Bytes("89ab"));
}

TEST(RingBuffer, ExactlyCapacityFillsWithoutLoss) {
  RingBuffer ring(4);
  ring.Append(Bytes("ab"));
  ring.Append(Bytes("cd"));
  EXPECT_EQ(ring.Contents(), Bytes("abcd"));
}

TEST(RingBuffer, ZeroCapacityKeepsNothing) {
  RingBuffer ring(0);
  ring.Append(Bytes("abc"));
  EXPECT_TRUE(ring.Contents().empty());
}

TEST(RingBuffer, EmptyAppendIsNoOp) {
  RingBuffer ring(4);
  ring.Append({});
  EXPECT_TRUE(ring.Contents().empty());
}

TEST(RingBuffer, ManySmallAppendsMatchTailOfStream) {
  RingBuffer ring(100);
  std::vector<uint8_t> all;
  for (int i = 0; i < 1000; ++i) {
    std::vector<uint8_t> chunk(static_cast<size_t>(i % 7), static_cast<uint8_t>(i));
    ring.Append(chunk);
    all.insert(all.end(), chunk.begin(), chunk.end());
  }
  std::vector<uint8_t> tail(all.end() - 100, all.end());
  EXPECT_EQ(ring.Contents(), tail);
}

}  // namespace
}  // namespace vmm
