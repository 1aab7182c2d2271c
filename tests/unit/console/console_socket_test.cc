#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <mutex>

#include "tests/unit/console/test_util.h"
#include "vmm/console/console.h"

namespace vmm {
namespace {

using namespace testing_support;

// What the guest received, filled on the io thread.
struct GuestInput {
  std::mutex mu;
  std::string bytes;
  std::string Get() {
    std::lock_guard lock(mu);
    return bytes;
  }
};

ConsoleOptions OptionsFor(GuestInput& input, size_t ring = 64 * 1024) {
  ConsoleOptions o;
  o.ring_bytes = ring;
  o.to_guest = [&input](std::span<const uint8_t> b) {
    std::lock_guard lock(input.mu);
    input.bytes.append(reinterpret_cast<const char*>(b.data()), b.size());
  };
  return o;
}

std::unique_ptr<Console> MakeSocketConsole(IoThread& io, const std::string& path, GuestInput& input,
                                           size_t ring = 64 * 1024) {
  auto console =
      Console::Create(io.io(), {SerialSpec::Kind::kSocket, path}, OptionsFor(input, ring));
  EXPECT_TRUE(console.has_value()) << console.error().ToString();
  return console ? std::move(*console) : nullptr;
}

TEST(ConsoleSocket, SocketHasMode0600) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input);
  struct stat st;
  ASSERT_EQ(stat(dir.Path("c.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  io.Stop();
}

TEST(ConsoleSocket, LateClientGetsBacklogThenLiveOutput) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input);
  console->Output(AsBytes("vmm-kernel: banner\n"));
  int fd = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReadAtLeast(fd, 19), "vmm-kernel: banner\n");
  console->Output(AsBytes("$ "));
  EXPECT_EQ(ReadAtLeast(fd, 2), "$ ");
  close(fd);
  io.Stop();
}

TEST(ConsoleSocket, BacklogIsOnlyTheLastRingBytes) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input, /*ring=*/8);
  console->Output(AsBytes("0123456789abcdef"));
  int fd = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReadAtLeast(fd, 8), "89abcdef");
  // Nothing more than the backlog arrives (no duplicate of pending bytes).
  EXPECT_EQ(ReadAtLeast(fd, 1, std::chrono::milliseconds(100)), "");
  close(fd);
  io.Stop();
}

TEST(ConsoleSocket, TwoClientsBothSeeOutputAndBothReachTheGuest) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input);
  console->Output(AsBytes("boot\n"));
  int a = ConnectUnix(dir.Path("c.sock"));
  int b = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(ReadAtLeast(a, 5), "boot\n");
  EXPECT_EQ(ReadAtLeast(b, 5), "boot\n");
  ASSERT_TRUE(WaitFor([&] { return console->stats().clients == 2; }));

  console->Output(AsBytes("live"));
  EXPECT_EQ(ReadAtLeast(a, 4), "live");
  EXPECT_EQ(ReadAtLeast(b, 4), "live");

  ASSERT_TRUE(SendAll(a, "from-a;"));
  ASSERT_TRUE(WaitFor([&] { return input.Get() == "from-a;"; }));
  ASSERT_TRUE(SendAll(b, "from-b;"));
  ASSERT_TRUE(WaitFor([&] { return input.Get() == "from-a;from-b;"; }));
  EXPECT_EQ(console->stats().bytes_in, 14u);
  EXPECT_EQ(console->stats().bytes_out, 9u);

  close(a);
  console->Output(AsBytes("more"));
  EXPECT_EQ(ReadAtLeast(b, 4), "more");
  EXPECT_TRUE(WaitFor([&] { return console->stats().clients == 1; }));
  close(b);
  io.Stop();
}

// Finding 6 of the hostile-input review: the console socket had no client
// limit (300 clients exhausted the fds, the API's with them). Beyond
// max_clients the oldest client goes and the newest is served.
TEST(ConsoleSocket, ClientsBeyondTheLimitPushOutTheOldest) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  ConsoleOptions o = OptionsFor(input);
  o.max_clients = 3;
  auto created = Console::Create(io.io(), {SerialSpec::Kind::kSocket, dir.Path("c.sock")}, o);
  ASSERT_TRUE(created.has_value());
  auto& console = *created;
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(ConnectUnix(dir.Path("c.sock")));
    ASSERT_TRUE(WaitFor([&] { return console->stats().clients == fds.size(); }));
  }
  const int newest = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(newest, 0);
  ASSERT_TRUE(WaitFor([&] { return console->stats().clients_total == 4; }));
  EXPECT_EQ(console->stats().clients, 3u);
  bool eof = false;
  ReadUntil(
      fds[0], [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(eof);  // the oldest was disconnected
  console->Output(AsBytes("to-all"));
  EXPECT_EQ(ReadAtLeast(newest, 6), "to-all");
  EXPECT_EQ(ReadAtLeast(fds[1], 6), "to-all");
  for (int fd : fds) close(fd);
  close(newest);
  io.Stop();
}

TEST(ConsoleSocket, OutputFromManyThreadsKeepsEachWriteWhole) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input);
  int fd = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WaitFor([&] { return console->stats().clients == 1; }));
  std::vector<std::thread> vcpus;
  for (int t = 0; t < 4; ++t) {
    vcpus.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) console->Output(AsBytes(t % 2 ? "ab" : "cd"));
    });
  }
  for (auto& v : vcpus) v.join();
  std::string got = ReadAtLeast(fd, 8000);
  ASSERT_EQ(got.size(), 8000u);
  for (size_t i = 0; i < got.size(); i += 2) {
    std::string pair = got.substr(i, 2);
    ASSERT_TRUE(pair == "ab" || pair == "cd") << "at " << i << ": " << pair;
  }
  close(fd);
  io.Stop();
}

TEST(ConsoleSocket, InputWaitsWhileTheGuestQueueIsFull) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  std::atomic<size_t> pending{100};
  ConsoleOptions o = OptionsFor(input);
  o.guest_input_pending = [&] { return pending.load(); };
  o.max_guest_input_pending = 100;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kSocket, dir.Path("c.sock")}, o);
  ASSERT_TRUE(console.has_value());
  int fd = ConnectUnix(dir.Path("c.sock"));
  ASSERT_TRUE(SendAll(fd, "held"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(input.Get(), "");
  pending = 0;
  EXPECT_TRUE(WaitFor([&] { return input.Get() == "held"; }));
  close(fd);
  io.Stop();
}

TEST(ConsoleSocket, StaleSocketIsReplaced) {
  TempDir dir;
  std::string path = dir.Path("c.sock");
  // What a crashed vmm leaves behind: a bound socket file nobody listens on.
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(stale);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  IoThread io;
  GuestInput input;
  auto second = MakeSocketConsole(io, path, input);
  ASSERT_NE(second, nullptr);
  int fd = ConnectUnix(path);
  EXPECT_GE(fd, 0);
  close(fd);
  io.Stop();
}

TEST(ConsoleSocket, LiveSocketIsRefused) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto first = MakeSocketConsole(io, dir.Path("c.sock"), input);
  auto second =
      Console::Create(io.io(), {SerialSpec::Kind::kSocket, dir.Path("c.sock")}, OptionsFor(input));
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().message().find("in use"), std::string::npos);
  io.Stop();
}

TEST(ConsoleSocket, PathThatIsNotASocketIsRefused) {
  TempDir dir;
  std::string path = dir.Path("regular");
  FILE* f = fopen(path.c_str(), "w");
  fputs("keep me", f);
  fclose(f);
  IoThread io;
  GuestInput input;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kSocket, path}, OptionsFor(input));
  ASSERT_FALSE(console.has_value());
  EXPECT_EQ(console.error().kind(), base::ErrorKind::kUsage);
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
  io.Stop();
}

TEST(ConsoleSocket, SocketFileIsRemovedOnDestruction) {
  TempDir dir;
  IoThread io;
  GuestInput input;
  auto console = MakeSocketConsole(io, dir.Path("c.sock"), input);
  io.Stop();
  console.reset();
  EXPECT_FALSE(std::filesystem::exists(dir.Path("c.sock")));
}

TEST(ConsoleFile, AppendsToExistingFile) {
  TempDir dir;
  std::string path = dir.Path("serial.log");
  FILE* f = fopen(path.c_str(), "w");
  fputs("old\n", f);
  fclose(f);
  IoThread io;
  GuestInput input;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kFile, path}, OptionsFor(input));
  ASSERT_TRUE(console.has_value());
  (*console)->Output(AsBytes("new\n"));
  io.Stop();
  console->reset();
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "old\nnew\n");
}

TEST(ConsoleFile, UnwritableDirectoryIsNoInputError) {
  IoThread io;
  GuestInput input;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kFile, "/nonexistent/dir/x.log"},
                                 OptionsFor(input));
  ASSERT_FALSE(console.has_value());
  EXPECT_EQ(console.error().kind(), base::ErrorKind::kNoInput);
  io.Stop();
}

TEST(ConsoleNone, CountsAndKeepsBacklogAndLastLine) {
  IoThread io;
  GuestInput input;
  auto console = Console::Create(io.io(), {SerialSpec::Kind::kNone, ""}, OptionsFor(input));
  ASSERT_TRUE(console.has_value());
  (*console)->Output(AsBytes("first line\r\nsecond"));
  EXPECT_EQ((*console)->stats().bytes_out, 18u);
  EXPECT_EQ((*console)->LastLine(), "second");
  (*console)->Output(AsBytes(" line\n"));
  EXPECT_EQ((*console)->LastLine(), "second line");
  EXPECT_EQ((*console)->Backlog().size(), 24u);
  io.Stop();
}

}  // namespace
}  // namespace vmm

namespace vmm {
namespace {

using namespace testing_support;

// An owner that destroys its io_context before the console (member order)
// must not crash: the console releases its sockets at io_context shutdown.
TEST(ConsoleSocket, IoContextDestroyedFirstReleasesSocketsSafely) {
  TempDir dir;
  auto io = std::make_unique<asio::io_context>();
  std::string guest;
  ConsoleOptions o;
  o.to_guest = [&](std::span<const uint8_t> b) { guest.append(b.begin(), b.end()); };
  auto console = Console::Create(*io, {SerialSpec::Kind::kSocket, dir.Path("c.sock")}, o);
  ASSERT_TRUE(console.has_value());
  int fd = ConnectUnix(dir.Path("c.sock"));
  ASSERT_GE(fd, 0);
  (*console)->Output(AsBytes("hello"));
  for (int i = 0; i < 50 && (*console)->stats().clients == 0; ++i) {
    io->run_for(std::chrono::milliseconds(10));
  }
  io->run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ReadAtLeast(fd, 5), "hello");
  io.reset();
  EXPECT_FALSE(std::filesystem::exists(dir.Path("c.sock")));
  bool eof = false;
  ReadUntil(
      fd, [](const std::string&) { return false; }, std::chrono::seconds(2), &eof);
  EXPECT_TRUE(eof);
  (*console)->Output(AsBytes("after"));  // still safe: counted, kept in the ring
  EXPECT_EQ((*console)->stats().bytes_out, 10u);
  console->reset();
  close(fd);
}

}  // namespace
}  // namespace vmm
