#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/fd_hygiene.h"

namespace base {
namespace {

// Returns true if something accepts connections on the socket at `path`.
bool SocketIsLive(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return live;
}

}  // namespace

Result<std::unique_ptr<UnixListener>> UnixListener::Create(asio::io_context& io,
                                                           const std::string& path) {
  if (path.empty()) return MakeError(ErrorKind::kUsage, "socket path is empty");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return MakeError(ErrorKind::kUsage, "socket path {} is longer than {} bytes", path,
                     sizeof(sockaddr_un{}.sun_path) - 1);
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return MakeError(ErrorKind::kUsage, "{} exists and is not a socket; refusing to replace it",
                       path);
    }
    if (SocketIsLive(path)) {
      return MakeError(ErrorKind::kUsage, "{} is in use by another process", path);
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return MakeErrnoError(ErrorKind::kNoInput, "cannot remove stale socket {}", path);
    }
  }

  std::unique_ptr<UnixListener> listener(new UnixListener(io, path));
  asio::error_code ec;
  auto& acceptor = listener->acceptor_;
  acceptor.open(asio::local::stream_protocol(), ec);
  if (!ec) SetCloseOnExec(acceptor.native_handle());  // asio does not
  if (!ec) acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (ec) {
    return std::unexpected(
        Error(ErrorKind::kNoInput, fmt::format("cannot bind {}", path), ec.value()));
  }
  if (chmod(path.c_str(), 0600) != 0) {
    int saved = errno;
    unlink(path.c_str());
    return std::unexpected(Error(ErrorKind::kInternal, fmt::format("chmod 0600 {}", path), saved));
  }
  if (lstat(path.c_str(), &st) == 0) {
    listener->dev_ = st.st_dev;
    listener->ino_ = st.st_ino;
  }
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    unlink(path.c_str());
    return std::unexpected(
        Error(ErrorKind::kInternal, fmt::format("listen on {}", path), ec.value()));
  }
  return listener;
}

UnixListener::~UnixListener() {
  asio::error_code ec;
  acceptor_.close(ec);
  struct stat st;
  if (ino_ != 0 && lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    unlink(path_.c_str());
  }
}

}  // namespace base
