#include "devices/legacy/debugcon.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace devices {
namespace {

TEST(Debugcon, WritesGoToTheSinkAndReadsReturnE9) {
  std::string out;
  Debugcon port([&](std::span<const uint8_t> data) { out.append(data.begin(), data.end()); });
  for (char c : std::string("hi\n")) {
    const uint8_t byte = static_cast<uint8_t>(c);
    port.Write({0xe9, 0, 0}, std::span(&byte, 1));
  }
  EXPECT_EQ(out, "hi\n");
  EXPECT_EQ(port.bytes_out(), 3u);
  uint8_t read[2] = {};
  port.Read({0xe9, 0, 0}, std::span(read, 1));
  EXPECT_EQ(read[0], 0xe9);
}

TEST(Debugcon, SpecsAreChecked) {
  EXPECT_EQ(*ParseDebugconSpec("stdio"), (DebugconSpec{DebugconSpec::Kind::kStdio, ""}));
  EXPECT_EQ(*ParseDebugconSpec("none"), (DebugconSpec{DebugconSpec::Kind::kNone, ""}));
  EXPECT_EQ(*ParseDebugconSpec("file:/tmp/x"), (DebugconSpec{DebugconSpec::Kind::kFile, "/tmp/x"}));
  for (const char* bad : {"", "file:", "socket:/x", "tty"}) {
    auto result = ParseDebugconSpec(bad);
    ASSERT_FALSE(result) << bad;
    EXPECT_EQ(result.error().exit_status(), 64);
  }
  auto none = Debugcon::Create(DebugconSpec{});
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, nullptr);
}

TEST(Debugcon, FileSinkReceivesTheBytes) {
  char path[] = "/tmp/vmm-debugcon-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    auto port = Debugcon::Create(DebugconSpec{DebugconSpec::Kind::kFile, path});
    ASSERT_TRUE(port) << port.error().message();
    const uint8_t bytes[] = {'o', 'k'};
    (*port)->Write({0xe9, 0, 0}, std::span(bytes, 1));
    (*port)->Write({0xe9, 0, 0}, std::span(bytes + 1, 1));
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "ok");
  std::remove(path);
  auto missing = Debugcon::Create(DebugconSpec{DebugconSpec::Kind::kFile, "/nonexistent-dir/x"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().exit_status(), 78);
}

}  // namespace
}  // namespace devices
