#include <gtest/gtest.h>

#include "vmm/console/console.h"

namespace vmm {
namespace {

TEST(ParseSerialSpec, AcceptsStdioAndNone) {
  auto stdio = ParseSerialSpec("stdio");
  ASSERT_TRUE(stdio.has_value());
  EXPECT_EQ(stdio->kind, SerialSpec::Kind::kStdio);
  auto none = ParseSerialSpec("none");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->kind, SerialSpec::Kind::kNone);
}

TEST(ParseSerialSpec, FileAndSocketKeepTheWholePath) {
  auto file = ParseSerialSpec("file:/tmp/a:b.log");
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(file->kind, SerialSpec::Kind::kFile);
  EXPECT_EQ(file->path, "/tmp/a:b.log");
  auto sock = ParseSerialSpec("socket:rel/console.sock");
  ASSERT_TRUE(sock.has_value());
  EXPECT_EQ(sock->kind, SerialSpec::Kind::kSocket);
  EXPECT_EQ(sock->path, "rel/console.sock");
}

TEST(ParseSerialSpec, UnknownKindIsUsageErrorNamingTheText) {
  auto r = ParseSerialSpec("pty");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind(), base::ErrorKind::kUsage);
  EXPECT_NE(r.error().message().find("pty"), std::string::npos);
}

TEST(ParseSerialSpec, EmptyPathIsUsageError) {
  EXPECT_FALSE(ParseSerialSpec("file:").has_value());
  EXPECT_FALSE(ParseSerialSpec("socket:").has_value());
  EXPECT_EQ(ParseSerialSpec("file:").error().kind(), base::ErrorKind::kUsage);
}

TEST(ParseSerialSpec, CaseAndWhitespaceAreNotGuessed) {
  EXPECT_FALSE(ParseSerialSpec("STDIO").has_value());
  EXPECT_FALSE(ParseSerialSpec(" stdio").has_value());
  EXPECT_FALSE(ParseSerialSpec("").has_value());
}

TEST(FormatSerialSpec, RoundTrips) {
  for (const char* text : {"stdio", "none", "file:/x/y", "socket:/run/c.sock"}) {
    EXPECT_EQ(FormatSerialSpec(*ParseSerialSpec(text)), text);
  }
}

}  // namespace
}  // namespace vmm
