#include "vmm/console/attach.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/sandbox/seccomp.h"
#include "vmm/console/escape.h"
#include "vmm/console/terminal.h"

namespace vmm {
namespace {

constexpr int kExitOk = 0;
constexpr int kLingerMs = 500;  // after stdin ends, as socat's -t default

void Say(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// Writes all of `data`, waiting in poll if the descriptor is non-blocking.
bool WriteAll(int fd, const uint8_t* data, size_t size, bool socket) {
  while (size > 0) {
    ssize_t n = socket ? send(fd, data, size, MSG_NOSIGNAL) : write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, -1);
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

int AttachWithFds(const std::string& socket_path, int in_fd, int out_fd, int err_fd,
                  const std::function<void()>& after_setup) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) {
    Say(err_fd, fmt::format("vmm attach: {}: path too long\n", socket_path));
    return static_cast<int>(base::ErrorKind::kUsage);
  }
  struct stat st;
  if (stat(socket_path.c_str(), &st) != 0) {
    Say(err_fd, fmt::format("vmm attach: {}: {}\n", socket_path, std::strerror(errno)));
    return static_cast<int>(base::ErrorKind::kNoInput);
  }
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    Say(err_fd, fmt::format("vmm attach: socket: {}\n", std::strerror(errno)));
    return static_cast<int>(base::ErrorKind::kInternal);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  if (connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(sock);
    Say(err_fd, fmt::format("vmm attach: {}: {}\n", socket_path, std::strerror(err)));
    if (err == ENOENT || err == EACCES || err == EPERM || err == ENOTDIR) {
      return static_cast<int>(base::ErrorKind::kNoInput);
    }
    return static_cast<int>(base::ErrorKind::kUnavailable);  // ECONNREFUSED and the like
  }

  const bool tty = isatty(in_fd) == 1;
  if (tty) {
    InstallTerminalRestoreHandlers();
    if (auto raw = EnterRawMode(in_fd); !raw) {
      Say(err_fd, fmt::format("vmm attach: {}\n", raw.error().ToString()));
      close(sock);
      return raw.error().exit_status();
    }
    Say(err_fd,
        fmt::format("[attached to {}; escape: C-a x detaches, C-a h help]\r\n", socket_path));
  }

  // Connected and the terminal set: confined from here (docs/security.md).
  if (after_setup) after_setup();

  EscapeFilter escape;
  std::array<uint8_t, 4096> buf;
  std::vector<uint8_t> forward;
  bool stdin_open = true;
  int status = kExitOk;
  bool done = false;
  while (!done) {
    pollfd fds[2] = {{sock, POLLIN, 0}, {in_fd, POLLIN, 0}};
    int r = poll(fds, stdin_open ? 2 : 1, stdin_open ? -1 : kLingerMs);
    if (r < 0) {
      if (errno == EINTR) continue;
      Say(err_fd, fmt::format("vmm attach: poll: {}\n", std::strerror(errno)));
      status = static_cast<int>(base::ErrorKind::kInternal);
      break;
    }
    if (r == 0) break;  // linger after stdin's end elapsed
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(sock, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (tty) Say(err_fd, "\r\n[the guest's console closed]\r\n");
        break;  // the guest side closed: normal end
      }
      if (!WriteAll(out_fd, buf.data(), static_cast<size_t>(n), false)) break;
    }
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(in_fd, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        stdin_open = false;
        shutdown(sock, SHUT_WR);
        continue;
      }
      forward.clear();
      for (ssize_t i = 0; i < n && !done; ++i) {
        uint8_t b = buf[static_cast<size_t>(i)];
        if (!tty) {
          forward.push_back(b);
          continue;
        }
        switch (escape.Feed(b)) {
          case EscapeFilter::Action::kForward:
            forward.push_back(b);
            break;
          case EscapeFilter::Action::kSwallow:
            break;
          case EscapeFilter::Action::kHelp:
            Say(err_fd, EscapeHelpText(/*attach=*/true));
            break;
          case EscapeFilter::Action::kQuit:
            Say(err_fd, "\r\n[detached]\r\n");
            done = true;
            break;
        }
      }
      if (!forward.empty() && !WriteAll(sock, forward.data(), forward.size(), true)) {
        if (tty) Say(err_fd, "\r\n[the guest's console closed]\r\n");
        break;
      }
    }
  }
  close(sock);
  if (tty) RestoreTerminalState();
  return status;
}

int AttachMain(const std::string& socket_path) {
  // A closed stdout (`vmm attach S | head`) ends attach through write errors,
  // not by a signal; the socket side uses MSG_NOSIGNAL anyway.
  signal(SIGPIPE, SIG_IGN);
  return AttachWithFds(socket_path, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO,
                       [] { base::sandbox::EnterThreadOrDie(base::sandbox::ThreadKind::kAttach); });
}

}  // namespace vmm
