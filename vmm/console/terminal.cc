#include "vmm/console/terminal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace vmm {
namespace {

// Written only while g_fd is -1 (EnterRawMode), read by Restore after an
// atomic exchange, so a signal handler never sees a half-written struct.
struct termios g_saved;
std::atomic<int> g_fd{-1};

constexpr int kHandledSignals[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT, SIGPIPE,
                                   SIGSEGV, SIGBUS,  SIGILL, SIGFPE,  SIGABRT};
constexpr int kMaxSignal = 65;
struct sigaction g_previous[kMaxSignal];

void RestoreHandler(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  RestoreTerminalState();
  const struct sigaction& prev = g_previous[sig];
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, context);
      errno = saved_errno;
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN &&
             prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    errno = saved_errno;
    return;
  }
  // Default action: die of the same signal. The signal is blocked while this
  // handler runs; it is delivered again when the handler returns (raise), or
  // the faulting instruction re-executes (SIGSEGV and friends).
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  bool hardware_fault = (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) &&
                        info != nullptr && info->si_code > 0;
  if (!hardware_fault) raise(sig);
  errno = saved_errno;
}

void RestoreAtExit() { RestoreTerminalState(); }

}  // namespace

void MakeRawTermios(struct termios& tio) {
  tio.c_iflag &=
      ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  tio.c_oflag |= OPOST;
  tio.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | IEXTEN | ISIG);
  tio.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
  tio.c_cflag |= CS8;
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
}

base::Result<void> EnterRawMode(int fd) {
  if (g_fd.load() >= 0) {
    return base::MakeError(base::ErrorKind::kInternal, "a terminal is already in raw mode");
  }
  struct termios tio;
  if (tcgetattr(fd, &tio) != 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal, "tcgetattr on fd {}", fd);
  }
  g_saved = tio;
  MakeRawTermios(tio);
  // Publish before changing the mode, so a signal arriving in between still restores.
  g_fd.store(fd);
  if (tcsetattr(fd, TCSANOW, &tio) != 0) {
    g_fd.store(-1);
    return base::MakeErrnoError(base::ErrorKind::kInternal, "tcsetattr (raw mode) on fd {}", fd);
  }
  return {};
}

void RestoreTerminalState() {
  int fd = g_fd.exchange(-1);
  if (fd >= 0) tcsetattr(fd, TCSANOW, &g_saved);
}

bool TerminalIsRaw() { return g_fd.load() >= 0; }

void InstallTerminalRestoreHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit(RestoreAtExit);
    std::at_quick_exit(RestoreAtExit);
  });
  // Per signal, every call: a handler installed since the last call (an
  // asio::signal_set, say) gets wrapped, so ours runs first and chains to it.
  static std::mutex mu;
  std::lock_guard lock(mu);
  for (int sig : kHandledSignals) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == RestoreHandler) continue;
    // An ignored SIGINT/SIGHUP (nohup, background job) stays ignored.
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) continue;
    g_previous[sig] = old;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = RestoreHandler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

}  // namespace vmm
