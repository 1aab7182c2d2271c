// `vmm attach SOCKET`: connect this terminal to a running guest's serial console.
//
// A plain byte stream in both directions (no framing), so `socat` is an
// equivalent client. With a TTY stdin the terminal goes into raw mode
// (restored on every exit path, terminal.h) and the escape keys work:
// Ctrl-A x detaches (the guest keeps running), Ctrl-A h prints help on
// stderr, Ctrl-A Ctrl-A sends a literal Ctrl-A. Without a TTY, stdin is
// forwarded unchanged; at its end the socket's write side is shut down and
// output is still copied for half a second (socat's habit), then attach exits 0.
//
// Exit status: 0 when the guest's side closes the socket, on detach, or after
// stdin ended; 66 if SOCKET does not exist or is not accessible; 69 if the
// connection is refused (a stale socket: no vmm serves it); 70 on other errors.
#pragma once

#include <functional>
#include <string>

namespace vmm {

int AttachMain(const std::string& socket_path);

// The same, on explicit descriptors (tests use a pseudo-terminal or pipes).
// `after_setup` runs once connected with the terminal set, before the first
// byte is copied (AttachMain loads the attach seccomp filter there).
int AttachWithFds(const std::string& socket_path, int in_fd, int out_fd, int err_fd,
                  const std::function<void()>& after_setup = {});

}  // namespace vmm
