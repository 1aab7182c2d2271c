#include "devices/legacy/debug_exit.h"

#include <gtest/gtest.h>

#include <vector>

#include "devices/legacy/boot_phase.h"

namespace devices {
namespace {

TEST(DebugExit, WritesOfOneTwoAndFourBytesReportTheLittleEndianValue) {
  std::vector<uint32_t> values;
  DebugExit port([&](uint32_t value) { values.push_back(value); });
  const uint8_t bytes[4] = {0x2a, 0x01, 0x00, 0x80};
  port.Write({0xf4, 0, 0}, std::span(bytes, 1));
  port.Write({0xf4, 0, 0}, std::span(bytes, 2));
  port.Write({0xf4, 0, 0}, std::span(bytes, 4));
  EXPECT_EQ(values, (std::vector<uint32_t>{0x2a, 0x012a, 0x8000012a}));
}

TEST(DebugExit, OddWidthsAreIgnoredAndCounted) {
  int calls = 0;
  DebugExit port([&](uint32_t) { ++calls; });
  const uint8_t bytes[8] = {};
  port.Write({0xf4, 0, 0}, std::span(bytes, 3));
  port.Write({0xf4, 0, 0}, std::span(bytes, 8));
  port.Write({0xf4, 0, 0}, std::span(bytes, 0));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(port.guest_errors(), 3u);
}

TEST(DebugExit, ReadsReturnZero) {
  DebugExit port(nullptr);
  uint8_t bytes[4] = {1, 2, 3, 4};
  port.Read({0xf4, 0, 0}, bytes);
  EXPECT_EQ(bytes[0] | bytes[1] | bytes[2] | bytes[3], 0);
}

TEST(BootPhasePort, EachWrittenByteIsReportedAndLatched) {
  std::vector<uint8_t> phases;
  BootPhasePort port([&](uint8_t code) { phases.push_back(code); });
  const uint8_t codes[2] = {0x40, 0x41};
  port.Write({0x80, 0, 0}, std::span(codes, 1));
  port.Write({0x80, 0, 0}, std::span(codes + 1, 1));
  EXPECT_EQ(phases, (std::vector<uint8_t>{0x40, 0x41}));
  uint8_t latched = 0;
  port.Read({0x80, 0, 0}, std::span(&latched, 1));
  EXPECT_EQ(latched, 0x41);
  EXPECT_EQ(port.writes(), 2u);
}

}  // namespace
}  // namespace devices
