// A child process with its stdout and stderr on non-blocking pipes.
//
// The child gets /dev/null as stdin (or a pipe, for a case that types on the
// guest's console) and its own process group, so Kill()
// ends it and anything it started, and a Ctrl-C at the terminal reaches the
// runner only (which then kills its children). Where the host kernel has
// pidfd_open (Linux 5.3+), pid_fd() becomes readable when the child exits, so
// the runner's poll() learns of exits without SIGCHLD. Owned by one runner
// job; used on the runner's thread only.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace vmm::suite {

class ChildProcess {
 public:
  // Starts argv[0] (a path, not searched in PATH) with argv. With
  // `stdin_pipe`, stdin_fd() is the (non-blocking) write end of its stdin.
  [[nodiscard]] static base::Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                                        bool stdin_pipe = false);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills and reaps a child that is still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }
  int pid_fd() const { return pid_fd_; }  // -1 without pidfd support
  int stdin_fd() const { return stdin_fd_; }

  void CloseStdout();
  void CloseStderr();
  void CloseStdin();

  // SIGKILL to the child's process group. Safe to call repeatedly.
  void Kill();

  // Reaps the child if it has exited; returns its raw wait status.
  std::optional<int> TryWait();
  bool reaped() const { return reaped_; }

 private:
  ChildProcess() = default;
  void Reset();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int stdin_fd_ = -1;
  int pid_fd_ = -1;
  bool reaped_ = false;
};

}  // namespace vmm::suite
