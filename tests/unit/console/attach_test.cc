#include "vmm/console/attach.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <future>

#include "tests/unit/console/test_util.h"
#include "vmm/console/console.h"
#include "vmm/console/terminal.h"

namespace vmm {
namespace {

using namespace testing_support;

// A listening socket the test accepts on by hand.
int Listen(const std::string& path, bool do_listen = true) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (do_listen) {
    EXPECT_EQ(listen(fd, 4), 0);
  }
  return fd;
}

TEST(Attach, MissingSocketExits66) {
  TempDir dir;
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  int devnull = open("/dev/null", O_RDWR);
  EXPECT_EQ(AttachWithFds(dir.Path("nope.sock"), devnull, devnull, err[1]), 66);
  close(err[1]);
  EXPECT_NE(ReadContaining(err[0], "nope.sock").find("No such file"), std::string::npos);
  close(err[0]);
  close(devnull);
}

TEST(Attach, RefusedConnectionExits69) {
  TempDir dir;
  int stale = Listen(dir.Path("stale.sock"), /*do_listen=*/false);
  int devnull = open("/dev/null", O_RDWR);
  EXPECT_EQ(AttachWithFds(dir.Path("stale.sock"), devnull, devnull, devnull), 69);
  close(stale);
  close(devnull);
}

TEST(Attach, CopiesBothWaysAndExits0WhenTheGuestSideCloses) {
  TempDir dir;
  int server = Listen(dir.Path("c.sock"));
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  auto result = std::async(
      std::launch::async, [&] { return AttachWithFds(dir.Path("c.sock"), in[0], out[1], out[1]); });
  int conn = accept(server, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  ASSERT_TRUE(SendAll(conn, "banner\n"));
  EXPECT_EQ(ReadAtLeast(out[0], 7), "banner\n");
  ASSERT_EQ(write(in[1], "input\x01x", 7), 7);  // no TTY: Ctrl-A is data
  EXPECT_EQ(ReadAtLeast(conn, 7), "input\x01x");
  close(conn);
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get(), 0);
  for (int fd : {in[0], in[1], out[0], out[1], server}) close(fd);
}

TEST(Attach, StdinEndHalfClosesAndLingersForOutput) {
  TempDir dir;
  int server = Listen(dir.Path("c.sock"));
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  auto result = std::async(
      std::launch::async, [&] { return AttachWithFds(dir.Path("c.sock"), in[0], out[1], out[1]); });
  int conn = accept(server, nullptr, nullptr);
  ASSERT_EQ(write(in[1], "q\n", 2), 2);
  close(in[1]);
  bool eof = false;
  EXPECT_EQ(ReadUntil(
                conn, [](const std::string&) { return false; }, std::chrono::seconds(2), &eof),
            "q\n");
  EXPECT_TRUE(eof);  // attach shut down its write side
  ASSERT_TRUE(SendAll(conn, "answer\n"));
  EXPECT_EQ(ReadAtLeast(out[0], 7), "answer\n");
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get(), 0);
  for (int fd : {in[0], out[0], out[1], server, conn}) close(fd);
}

TEST(Attach, CtrlAXDetachesFromATerminalAndRestoresIt) {
  TempDir dir;
  IoThread io;
  std::mutex mu;
  std::string guest_got;
  ConsoleOptions options;
  options.to_guest = [&](std::span<const uint8_t> b) {
    std::lock_guard lock(mu);
    guest_got.append(reinterpret_cast<const char*>(b.data()), b.size());
  };
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kSocket, dir.Path("c.sock")}, options);
  ASSERT_TRUE(console.has_value());
  (*console)->Output(AsBytes("vmm-kernel banner\n"));

  int master, slave;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  termios original;
  tcgetattr(slave, &original);
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  auto result = std::async(std::launch::async,
                           [&] { return AttachWithFds(dir.Path("c.sock"), slave, slave, err[1]); });
  // The backlog arrives on the terminal.
  EXPECT_NE(ReadContaining(master, "banner").find("banner"), std::string::npos);
  ASSERT_TRUE(WaitFor([] { return TerminalIsRaw(); }));
  ASSERT_EQ(write(master, "hi\x01\x01\x01x", 6), 6);
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get(), 0);
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return guest_got == "hi\x01";
  })) << guest_got;
  termios now;
  tcgetattr(slave, &now);
  EXPECT_EQ(now.c_lflag, original.c_lflag);
  EXPECT_EQ(now.c_iflag, original.c_iflag);
  EXPECT_NE(ReadContaining(err[0], "detached").find("detached"), std::string::npos);
  io.Stop();
  for (int fd : {master, slave, err[0], err[1]}) close(fd);
}

}  // namespace
}  // namespace vmm
