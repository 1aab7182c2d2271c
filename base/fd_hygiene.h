// File descriptors vmm did not open and must not pass on (docs/security.md,
// "File descriptors").
//
// vmm closes whatever it inherited above stderr before it opens anything
// (a caller's socket, a CI runner's pipe or jobserver fd would otherwise
// stay open for the life of the VM), and every fd vmm opens is
// close-on-exec, so the children the suite runner starts get only their
// three standard streams.
#pragma once

namespace base {

// Closes every fd >= `first` (close_range(2) where the kernel has it,
// Linux 5.9+; otherwise each fd listed in /proc/self/fd). Call it before
// any thread starts. Returns how many were open, for the log.
int CloseFdsFrom(int first);

// Sets FD_CLOEXEC on `fd` (for fds made by libraries that do not, such as
// asio's sockets). Errors are ignored: the fd is then simply inherited.
void SetCloseOnExec(int fd);

// True if `fd` is open and close-on-exec (for tests).
bool IsCloseOnExec(int fd);

}  // namespace base
