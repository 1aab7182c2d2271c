#include "vmm/suite/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

extern char** environ;

namespace vmm::suite {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int PidFdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return -1;
  int result = static_cast<int>(fd);
  fcntl(result, F_SETFD, FD_CLOEXEC);
  return result;
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

base::Result<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                               bool stdin_pipe) {
  if (argv.empty()) return base::MakeError(base::ErrorKind::kInternal, "empty command line");
  int out_pipe[2];
  int err_pipe[2];
  int in_pipe[2] = {-1, -1};
  if (pipe2(out_pipe, O_CLOEXEC) != 0)
    return base::MakeErrnoError(base::ErrorKind::kInternal, "pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return base::MakeErrnoError(base::ErrorKind::kInternal, "pipe2");
  }
  if (stdin_pipe && pipe2(in_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return base::MakeErrnoError(base::ErrorKind::kInternal, "pipe2");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_pipe) {
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  // dup2 clears FD_CLOEXEC on the target; the pipe ends themselves close on exec.
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  // Nothing else reaches the child, even an fd another thread opened without
  // O_CLOEXEC a moment ago (glibc 2.34+).
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGCHLD);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                     POSIX_SPAWN_SETSIGMASK));

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (in_pipe[0] >= 0) close(in_pipe[0]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    if (in_pipe[1] >= 0) close(in_pipe[1]);
    errno = rc;
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "{}", argv[0]);
  }

  ChildProcess child;
  child.pid_ = pid;
  child.stdout_fd_ = out_pipe[0];
  child.stderr_fd_ = err_pipe[0];
  child.stdin_fd_ = in_pipe[1];
  if (child.stdin_fd_ >= 0) fcntl(child.stdin_fd_, F_SETFL, O_NONBLOCK);
  fcntl(child.stdout_fd_, F_SETFL, O_NONBLOCK);
  fcntl(child.stderr_fd_, F_SETFL, O_NONBLOCK);
  child.pid_fd_ = PidFdOpen(pid);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Reset();
    pid_ = std::exchange(other.pid_, -1);
    stdout_fd_ = std::exchange(other.stdout_fd_, -1);
    stderr_fd_ = std::exchange(other.stderr_fd_, -1);
    stdin_fd_ = std::exchange(other.stdin_fd_, -1);
    pid_fd_ = std::exchange(other.pid_fd_, -1);
    reaped_ = std::exchange(other.reaped_, false);
  }
  return *this;
}

ChildProcess::~ChildProcess() { Reset(); }

void ChildProcess::Reset() {
  if (pid_ > 0 && !reaped_) {
    Kill();
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
  CloseFd(stdin_fd_);
  CloseFd(pid_fd_);
  pid_ = -1;
}

void ChildProcess::CloseStdout() { CloseFd(stdout_fd_); }
void ChildProcess::CloseStderr() { CloseFd(stderr_fd_); }
void ChildProcess::CloseStdin() { CloseFd(stdin_fd_); }

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  // The whole group first (the child is its leader); the pid itself in case
  // the child already left its group.
  kill(-pid_, SIGKILL);
  if (!reaped_) kill(pid_, SIGKILL);
}

std::optional<int> ChildProcess::TryWait() {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return std::nullopt;
  int status = 0;
  pid_t rc = waitpid(pid_, &status, WNOHANG);
  if (rc != pid_) return std::nullopt;
  reaped_ = true;
  CloseFd(pid_fd_);
  return status;
}

}  // namespace vmm::suite
