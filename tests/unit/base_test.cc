#include <gtest/gtest.h>

#include "base/error.h"
#include "base/guest_memory.h"

namespace vmm {
namespace {

base::Result<int> Half(int value) {
  if (value % 2 != 0) return base::MakeError(base::ErrorKind::kConfig, "{} is odd", value);
  return value / 2;
}

base::Result<int> Quarter(int value) {
  int half = TRY_CTX(Half(value), "quarter");
  return TRY(Half(half));
}

TEST(Error, TryPropagatesWithContext) {
  EXPECT_EQ(*Quarter(8), 2);
  auto result = Quarter(6);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message(), "3 is odd");
  auto odd = Quarter(3);
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().message(), "quarter: 3 is odd");
  EXPECT_EQ(odd.error().exit_status(), 78);
}

TEST(Error, ErrnoIsAppended) {
  errno = ENOENT;
  base::Error error = base::MakeErrnoError(base::ErrorKind::kNoInput, "open {}", "/x").error();
  EXPECT_EQ(error.ToString(), "open /x: No such file or directory");
}

TEST(ParseSize, AcceptsSuffixes) {
  EXPECT_EQ(*base::ParseSize("4096"), 4096u);
  EXPECT_EQ(*base::ParseSize("64K"), 64 * base::KiB);
  EXPECT_EQ(*base::ParseSize("512m"), 512 * base::MiB);
  EXPECT_EQ(*base::ParseSize("2G"), 2 * base::GiB);
  EXPECT_EQ(*base::ParseSize("1GiB"), 1 * base::GiB);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
  EXPECT_FALSE(base::ParseSize(""));
  EXPECT_FALSE(base::ParseSize("M"));
  EXPECT_FALSE(base::ParseSize("12Q"));
  EXPECT_FALSE(base::ParseSize("-1"));
  EXPECT_FALSE(base::ParseSize("99999999999999999999"));
  auto big = base::ParseSize("17179869184G");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind(), base::ErrorKind::kUsage);
}

TEST(GuestMemory, SmallRamIsOneRegion) {
  auto memory = base::GuestMemory::Create(16 * base::MiB);
  ASSERT_TRUE(memory) << memory.error().ToString();
  ASSERT_EQ((*memory)->regions().size(), 1u);
  EXPECT_EQ((*memory)->regions()[0].guest_phys, 0u);
}

TEST(GuestMemory, LargeRamSplitsAroundTheHole) {
  auto memory = base::GuestMemory::Create(4 * base::GiB);
  ASSERT_TRUE(memory) << memory.error().ToString();
  auto regions = (*memory)->regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].size, base::kMmioHoleStart);
  EXPECT_EQ(regions[1].guest_phys, base::kMmioHoleEnd);
  EXPECT_EQ(regions[1].size, 1 * base::GiB);
  EXPECT_FALSE((*memory)->Contains(base::kMmioHoleStart, 1));
  EXPECT_FALSE((*memory)->Contains(base::kMmioHoleStart - 1, 2));  // straddles into the hole
  EXPECT_TRUE((*memory)->Contains(base::kMmioHoleEnd, 1 * base::GiB));
}

TEST(GuestMemory, RejectsBadSizes) {
  EXPECT_FALSE(base::GuestMemory::Create(0));
  EXPECT_FALSE(base::GuestMemory::Create(4097));
}

TEST(GuestMemory, AccessorChecksBoundsAndOverflow) {
  auto memory = std::move(*base::GuestMemory::Create(1 * base::MiB));
  EXPECT_TRUE(memory->WriteObj<uint32_t>(0x1000, 0xdeadbeef));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(0x1000), 0xdeadbeefu);
  EXPECT_TRUE(memory->Contains(1 * base::MiB, 0));
  EXPECT_TRUE(memory->Span(1 * base::MiB - 4, 4));
  EXPECT_FALSE(memory->Span(1 * base::MiB - 3, 4));
  EXPECT_FALSE(memory->Span(UINT64_MAX, 2));
  EXPECT_FALSE(memory->Span(8, UINT64_MAX));
  EXPECT_FALSE(memory->Span(UINT64_MAX - 1, UINT64_MAX));
  EXPECT_FALSE(memory->Fill(1 * base::MiB, 0, 1));
}

}  // namespace
}  // namespace vmm

#include <fcntl.h>
#include <sys/wait.h>

#include "base/fd_hygiene.h"
#include "base/unix_socket.h"

namespace base {
namespace {

TEST(FdHygiene, CloseFdsFromClosesEverythingAboveAndNothingBelow) {
  // In a child, so the test process keeps its own fds.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fds[2];
    if (pipe(fds) != 0) _exit(10);
    const int high = fcntl(fds[0], F_DUPFD, 200);  // not close-on-exec
    if (high < 0) _exit(11);
    const int closed = CloseFdsFrom(STDERR_FILENO + 1);
    if (closed < 3) _exit(12);
    for (int fd : {fds[0], fds[1], high}) {
      if (fcntl(fd, F_GETFD) >= 0) _exit(13);
    }
    if (fcntl(STDERR_FILENO, F_GETFD) < 0) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(FdHygiene, UnixListenerIsCloseOnExec) {
  asio::io_context io;
  const std::string path = "/tmp/vmm-fd-hygiene-" + std::to_string(getpid()) + ".sock";
  auto listener = UnixListener::Create(io, path);
  ASSERT_TRUE(listener) << listener.error().ToString();
  EXPECT_TRUE(IsCloseOnExec((*listener)->acceptor().native_handle()));
  int plain[2];
  ASSERT_EQ(pipe(plain), 0);
  EXPECT_FALSE(IsCloseOnExec(plain[0]));
  SetCloseOnExec(plain[0]);
  EXPECT_TRUE(IsCloseOnExec(plain[0]));
  close(plain[0]);
  close(plain[1]);
}

}  // namespace
}  // namespace base
