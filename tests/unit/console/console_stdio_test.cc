// The stdio backend with a pipe, /dev/null, a regular file, and a pseudo-terminal as stdin.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>

#include <mutex>

#include "tests/unit/console/test_util.h"
#include "vmm/console/console.h"
#include "vmm/console/terminal.h"

namespace vmm {
namespace {

using namespace testing_support;

struct Recorder {
  std::mutex mu;
  std::string input;
  std::atomic<int> quits{0};
  std::string Get() {
    std::lock_guard lock(mu);
    return input;
  }
  ConsoleOptions Options(int in, int out, int err) {
    ConsoleOptions o;
    o.stdin_fd = in;
    o.stdout_fd = out;
    o.stderr_fd = err;
    o.to_guest = [this](std::span<const uint8_t> b) {
      std::lock_guard lock(mu);
      input.append(reinterpret_cast<const char*>(b.data()), b.size());
    };
    o.on_quit = [this] { ++quits; };
    return o;
  }
};

struct Pipe {
  Pipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  void CloseRead() {
    if (fds[0] >= 0) close(fds[0]);
    fds[0] = -1;
  }
  void CloseWrite() {
    if (fds[1] >= 0) close(fds[1]);
    fds[1] = -1;
  }
  int fds[2] = {-1, -1};
};

TEST(ConsoleStdio, PipeInputReachesGuestAndEofIsNotAnError) {
  IoThread io;
  Recorder rec;
  Pipe in, out;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(in.fds[0], out.fds[1], out.fds[1]));
  ASSERT_TRUE(console.has_value()) << console.error().ToString();
  ASSERT_EQ(write(in.fds[1], "echo hi\n\x01x", 10), 10);
  // No TTY: no escape processing, the bytes go through unchanged.
  ASSERT_TRUE(WaitFor([&] { return rec.Get() == "echo hi\n\x01x"; })) << rec.Get();
  in.CloseWrite();  // EOF
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  (*console)->Output(AsBytes("still works\n"));
  EXPECT_EQ(ReadAtLeast(out.fds[0], 12), "still works\n");
  EXPECT_EQ(rec.quits, 0);
  io.Stop();
}

TEST(ConsoleStdio, DevNullStdinIsFine) {
  IoThread io;
  Recorder rec;
  Pipe out;
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(devnull, out.fds[1], out.fds[1]));
  ASSERT_TRUE(console.has_value()) << console.error().ToString();
  (*console)->Output(AsBytes("x"));
  EXPECT_EQ(ReadAtLeast(out.fds[0], 1), "x");
  io.Stop();
  close(devnull);
}

TEST(ConsoleStdio, RegularFileStdinIsReadWhole) {
  TempDir dir;
  std::string path = dir.Path("input");
  std::string content(100000, 'q');
  content.back() = '!';
  {
    FILE* f = fopen(path.c_str(), "w");
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  IoThread io;
  Recorder rec;
  Pipe out;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(fd, out.fds[1], out.fds[1]));
  ASSERT_TRUE(console.has_value()) << console.error().ToString();
  EXPECT_TRUE(WaitFor([&] { return rec.Get().size() == content.size(); }));
  EXPECT_EQ(rec.Get(), content);
  io.Stop();
  close(fd);
}

TEST(ConsoleStdio, OutputKeepsOrderAndCounts) {
  IoThread io;
  Recorder rec;
  Pipe out;
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(devnull, out.fds[1], out.fds[1]));
  ASSERT_TRUE(console.has_value());
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = std::to_string(i) + ",";
    expected += piece;
    (*console)->Output(AsBytes(piece));
  }
  EXPECT_EQ(ReadAtLeast(out.fds[0], expected.size()), expected);
  EXPECT_EQ((*console)->stats().bytes_out, expected.size());
  io.Stop();
  close(devnull);
}

TEST(ConsoleStdio, BrokenStdoutDropsOutputWithoutStoppingTheGuest) {
  IoThread io;
  Recorder rec;
  Pipe out;
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(devnull, out.fds[1], out.fds[1]));
  ASSERT_TRUE(console.has_value());
  out.CloseRead();
  (*console)->Output(AsBytes("lost"));
  (*console)->Output(AsBytes("lost too"));
  EXPECT_EQ((*console)->stats().bytes_dropped, 12u);
  EXPECT_EQ((*console)->stats().bytes_out, 12u);
  io.Stop();
  close(devnull);
}

class ConsoleTty : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(openpty(&master_, &slave_, nullptr, nullptr, nullptr), 0);
    tcgetattr(slave_, &original_);
    ASSERT_EQ(pipe2(err_, O_CLOEXEC), 0);
  }
  void TearDown() override {
    RestoreTerminalState();
    close(master_);
    close(slave_);
    close(err_[0]);
    close(err_[1]);
  }
  bool Restored() {
    termios t;
    tcgetattr(slave_, &t);
    return t.c_lflag == original_.c_lflag && t.c_iflag == original_.c_iflag;
  }
  int master_ = -1, slave_ = -1;
  int err_[2] = {-1, -1};
  termios original_{};
};

TEST_F(ConsoleTty, RawModeEscapeKeysAndRestore) {
  IoThread io;
  Recorder rec;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(slave_, slave_, err_[1]));
  ASSERT_TRUE(console.has_value()) << console.error().ToString();
  EXPECT_TRUE(TerminalIsRaw());
  EXPECT_FALSE(Restored());

  // Ctrl-C is a byte for the guest (no ISIG); CR is not turned into NL.
  ASSERT_EQ(write(master_, "ls\r\x03", 4), 4);
  ASSERT_TRUE(WaitFor([&] { return rec.Get() == "ls\r\x03"; })) << rec.Get();

  // Ctrl-A Ctrl-A sends one Ctrl-A.
  ASSERT_EQ(write(master_, "\x01\x01", 2), 2);
  ASSERT_TRUE(WaitFor([&] { return rec.Get() == "ls\r\x03\x01"; }));

  // Ctrl-A h prints help on stderr and sends nothing.
  ASSERT_EQ(write(master_, "\x01h", 2), 2);
  EXPECT_NE(ReadContaining(err_[0], "C-a x").find("C-a x"), std::string::npos);

  // Ctrl-A x quits; the bytes before it still reach the guest.
  ASSERT_EQ(write(master_, "ab\x01x", 4), 4);
  ASSERT_TRUE(WaitFor([&] { return rec.quits.load() == 1; }));
  EXPECT_EQ(rec.Get(),
            "ls\r\x03\x01"
            "ab");

  // Guest output appears on the terminal, "\n" as a new line.
  (*console)->Output(AsBytes("hello\n"));
  EXPECT_NE(ReadContaining(master_, "hello\r\n").find("hello\r\n"), std::string::npos);

  (*console)->RestoreTerminal();
  EXPECT_TRUE(Restored());
  (*console)->RestoreTerminal();
  io.Stop();
  console->reset();
  EXPECT_TRUE(Restored());
}

TEST_F(ConsoleTty, DestructionRestoresTheTerminal) {
  IoThread io;
  Recorder rec;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(slave_, slave_, err_[1]));
  ASSERT_TRUE(console.has_value());
  EXPECT_FALSE(Restored());
  io.Stop();
  console->reset();
  EXPECT_TRUE(Restored());
}

TEST_F(ConsoleTty, PasteLargerThanOneReadArrivesWhole) {
  IoThread io;
  Recorder rec;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kStdio, ""},
                                 rec.Options(slave_, slave_, err_[1]));
  ASSERT_TRUE(console.has_value());
  std::string paste;
  for (int i = 0; paste.size() < 16 * 1024; ++i) paste += "line " + std::to_string(i) + "\r";
  std::thread writer([&] {
    std::string_view rest = paste;
    while (!rest.empty()) {
      ssize_t n = write(master_, rest.data(), std::min<size_t>(rest.size(), 1024));
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  });
  EXPECT_TRUE(WaitFor([&] { return rec.Get().size() >= paste.size(); }));
  writer.join();
  EXPECT_EQ(rec.Get(), paste);
  io.Stop();
}

}  // namespace
}  // namespace vmm
