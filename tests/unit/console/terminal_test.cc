// Raw mode and its restore on every exit path, checked on a pseudo-terminal.
#include "vmm/console/terminal.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

namespace vmm {
namespace {

class Pty {
 public:
  Pty() {
    EXPECT_EQ(openpty(&master_, &slave_, nullptr, nullptr, nullptr), 0);
    tcgetattr(slave_, &original_);
  }
  ~Pty() {
    close(master_);
    close(slave_);
  }
  int master() const { return master_; }
  int slave() const { return slave_; }
  const termios& original() const { return original_; }
  termios Current() const {
    termios t;
    tcgetattr(slave_, &t);
    return t;
  }
  bool IsOriginal() const {
    termios t = Current();
    return t.c_lflag == original_.c_lflag && t.c_iflag == original_.c_iflag &&
           t.c_oflag == original_.c_oflag && t.c_cflag == original_.c_cflag &&
           t.c_cc[VMIN] == original_.c_cc[VMIN];
  }
  bool IsRaw() const {
    termios t = Current();
    return (t.c_lflag & (ICANON | ECHO | ISIG)) == 0 && (t.c_iflag & (ICRNL | IXON)) == 0;
  }

 private:
  int master_ = -1;
  int slave_ = -1;
  termios original_{};
};

TEST(Terminal, RawModeThenRestoreGivesBackTheOriginalSettings) {
  Pty pty;
  ASSERT_TRUE(pty.IsOriginal());
  ASSERT_FALSE(pty.IsRaw());
  ASSERT_TRUE(EnterRawMode(pty.slave()).has_value());
  EXPECT_TRUE(TerminalIsRaw());
  EXPECT_TRUE(pty.IsRaw());
  // Output processing stays on, so the guest's "\n" starts a new line.
  EXPECT_NE(pty.Current().c_oflag & OPOST, 0u);
  RestoreTerminalState();
  EXPECT_FALSE(TerminalIsRaw());
  EXPECT_TRUE(pty.IsOriginal());
  RestoreTerminalState();  // idempotent
  EXPECT_TRUE(pty.IsOriginal());
}

TEST(Terminal, SecondRawModeIsRefusedWhileOneIsHeld) {
  Pty a, b;
  ASSERT_TRUE(EnterRawMode(a.slave()).has_value());
  EXPECT_FALSE(EnterRawMode(b.slave()).has_value());
  RestoreTerminalState();
  EXPECT_TRUE(a.IsOriginal());
  EXPECT_TRUE(b.IsOriginal());
}

TEST(Terminal, NotATtyFails) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(EnterRawMode(fds[0]).has_value());
  EXPECT_FALSE(TerminalIsRaw());
  close(fds[0]);
  close(fds[1]);
}

enum class ExitPath {
  kExit,
  kReturnFromMainLike,
  kSigterm,
  kSigint,
  kSighup,
  kAbort,
  kSegfault,
  kKillSegv
};

struct ExitCase {
  const char* name;
  ExitPath path;
};

class TerminalRestoredOn : public testing::TestWithParam<ExitCase> {};

// The child enters raw mode on the pty, then leaves by the given path; the
// parent checks the pty's settings afterwards.
TEST_P(TerminalRestoredOn, ExitPath) {
  Pty pty;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    InstallTerminalRestoreHandlers();
    if (!EnterRawMode(pty.slave())) _exit(90);
    if (!TerminalIsRaw()) _exit(91);
    switch (GetParam().path) {
      case ExitPath::kExit:
        exit(3);
      case ExitPath::kReturnFromMainLike:
        std::quick_exit(4);
      case ExitPath::kSigterm:
        kill(getpid(), SIGTERM);
        break;
      case ExitPath::kSigint:
        kill(getpid(), SIGINT);
        break;
      case ExitPath::kSighup:
        kill(getpid(), SIGHUP);
        break;
      case ExitPath::kAbort:
        abort();
      case ExitPath::kSegfault: {
        // A real fault (a store to an inaccessible page), which UBSan does
        // not intercept as it would a null store.
        void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *static_cast<volatile int*>(page) = 1;
        break;
      }
      case ExitPath::kKillSegv:
        kill(getpid(), SIGSEGV);
        break;
    }
    sleep(5);
    _exit(92);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  switch (GetParam().path) {
    case ExitPath::kExit:
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
      break;
    case ExitPath::kReturnFromMainLike:
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 4) << status;
      break;
    case ExitPath::kSigterm:
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
      break;
    case ExitPath::kSigint:
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
      break;
    case ExitPath::kSighup:
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP) << status;
      break;
    case ExitPath::kAbort:
      EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << status;
      break;
    case ExitPath::kSegfault:
    case ExitPath::kKillSegv:
      // Killed by SIGSEGV (or, under ASan, its report and exit status).
      EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                  (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) < 90))
          << status;
      break;
  }
  EXPECT_TRUE(pty.IsOriginal()) << "terminal left in raw mode after " << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, TerminalRestoredOn,
    testing::Values(ExitCase{"Exit", ExitPath::kExit},
                    ExitCase{"QuickExit", ExitPath::kReturnFromMainLike},
                    ExitCase{"Sigterm", ExitPath::kSigterm}, ExitCase{"Sigint", ExitPath::kSigint},
                    ExitCase{"Sighup", ExitPath::kSighup}, ExitCase{"Abort", ExitPath::kAbort},
                    ExitCase{"Segfault", ExitPath::kSegfault},
                    ExitCase{"KilledWithSigsegv", ExitPath::kKillSegv}),
    [](const testing::TestParamInfo<ExitCase>& info) { return info.param.name; });

// A handler installed before ours (e.g. vmm's own SIGTERM handling) still
// runs, after the terminal is restored.
TEST(Terminal, PreviousSignalHandlerStillRunsAfterRestore) {
  Pty pty;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGTERM, [](int) { _exit(TerminalIsRaw() ? 51 : 50); });
    InstallTerminalRestoreHandlers();
    if (!EnterRawMode(pty.slave())) _exit(90);
    kill(getpid(), SIGTERM);
    sleep(5);
    _exit(92);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 50) << status;
  EXPECT_TRUE(pty.IsOriginal());
}

}  // namespace
}  // namespace vmm
