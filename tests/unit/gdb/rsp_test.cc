#include "vmm/gdb/rsp.h"

#include <gtest/gtest.h>

namespace vmm::gdb {
namespace {

std::vector<RspEvent> FeedAll(PacketReader& reader, std::string_view bytes) {
  std::vector<RspEvent> events;
  reader.Feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), events);
  return events;
}

TEST(GdbRsp, FramesWithTheModulo256Checksum) {
  EXPECT_EQ(Frame("OK"), "$OK#9a");
  EXPECT_EQ(Frame(""), "$#00");
  // '$', '#', '}' and '*' are escaped as '}' then the byte XOR 0x20.
  EXPECT_EQ(Frame("a#b"), std::string("$a}\x03"
                                      "b#43"));
  EXPECT_EQ(Frame("*"), std::string("$}\x0a#87"));
}

TEST(GdbRsp, ReadsAGoodPacketAndAcks) {
  PacketReader reader;
  auto events = FeedAll(reader, "+$qSupported:swbreak+#8b-");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, RspEvent::Kind::kAck);
  EXPECT_EQ(events[1].kind, RspEvent::Kind::kPacket);
  EXPECT_EQ(events[1].payload, "qSupported:swbreak+");
  EXPECT_EQ(events[2].kind, RspEvent::Kind::kNack);
}

TEST(GdbRsp, PacketSplitAcrossFeeds) {
  PacketReader reader;
  const std::string framed = Frame("m1000,8");
  std::vector<RspEvent> events;
  for (char c : framed) {
    const uint8_t byte = static_cast<uint8_t>(c);
    reader.Feed(std::span(&byte, 1), events);
    if (events.empty()) {
      EXPECT_TRUE(reader.in_packet());
    }
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "m1000,8");
  EXPECT_FALSE(reader.in_packet());
}

TEST(GdbRsp, BadChecksumsAreReported) {
  PacketReader reader;
  auto events = FeedAll(reader, "$OK#00$OK#zz$OK#9a");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, RspEvent::Kind::kBadChecksum);
  EXPECT_EQ(events[1].kind, RspEvent::Kind::kBadChecksum);
  EXPECT_EQ(events[2].kind, RspEvent::Kind::kPacket);
}

TEST(GdbRsp, InterruptAndJunkOutsidePackets) {
  PacketReader reader;
  auto events = FeedAll(reader, "hello\x03world");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, RspEvent::Kind::kInterrupt);
  EXPECT_EQ(reader.junk_bytes(), 10u);
}

TEST(GdbRsp, OverlongPacketIsDroppedWithoutGrowing) {
  PacketReader reader;
  std::string big = "$" + std::string(kMaxPacket * 4, 'a') + "#00";
  auto events = FeedAll(reader, big);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, RspEvent::Kind::kOverlong);
  // The reader is usable afterwards.
  events = FeedAll(reader, Frame("?"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "?");
}

TEST(GdbRsp, ANewPacketInsideAPacketRestarts) {
  PacketReader reader;
  auto events = FeedAll(reader, "$garbage" + Frame("g"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, RspEvent::Kind::kPacket);
  EXPECT_EQ(events[0].payload, "g");
}

TEST(GdbRsp, EscapedBinaryRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string framed = Frame(all);
  PacketReader reader;
  auto events = FeedAll(reader, framed);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].kind, RspEvent::Kind::kPacket);
  auto data = Unescape(events[0].payload);
  ASSERT_TRUE(data);
  ASSERT_EQ(data->size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ((*data)[static_cast<size_t>(i)], i);
  EXPECT_FALSE(Unescape("abc}"));
}

TEST(GdbRsp, HexHelpers) {
  EXPECT_EQ(ParseHexNumber("ffff800000001000"), 0xffff800000001000u);
  EXPECT_FALSE(ParseHexNumber(""));
  EXPECT_FALSE(ParseHexNumber("10000000000000000"));  // 17 digits
  EXPECT_FALSE(ParseHexNumber("12g"));
  EXPECT_EQ(ToHex(std::string_view("OK\n")), "4f4b0a");
  auto bytes = FromHex("00ff7A");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, (std::vector<uint8_t>{0x00, 0xff, 0x7a}));
  EXPECT_FALSE(FromHex("abc"));
  EXPECT_FALSE(FromHex("zz"));
}

}  // namespace
}  // namespace vmm::gdb
