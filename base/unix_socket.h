// Listening Unix stream sockets for the serial console and the control API.
//
// ListenUnixSocket binds PATH with mode 0600 (bind, chmod, then listen, so no
// one can connect before the mode is set). A stale socket file (nothing
// accepts on it: connect gets ECONNREFUSED) is unlinked first; a socket a
// live process still serves, or a PATH that exists and is not a socket, is
// refused. Called on the thread that builds the VM; the acceptor is then used
// on the io_context thread only.
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <string>

#include "base/error.h"

namespace base {

// Owns a listening socket and unlinks its path on destruction (only if the
// path still names the socket it created).
class UnixListener {
 public:
  [[nodiscard]] static Result<std::unique_ptr<UnixListener>> Create(asio::io_context& io,
                                                                    const std::string& path);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  asio::local::stream_protocol::acceptor& acceptor() { return acceptor_; }
  const std::string& path() const { return path_; }

 private:
  UnixListener(asio::io_context& io, std::string path) : acceptor_(io), path_(std::move(path)) {}

  asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace base
