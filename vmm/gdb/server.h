// The GDB stub's socket side (docs/gdb.md): listens on TCP (loopback by
// default) or a Unix socket, serves one gdb client at a time with a
// GdbSession over a GdbTarget, on a thread of its own, so a debugger never
// runs on a vCPU's or a device's thread.
//
// A second client while one is connected is refused (accepted and closed,
// with a log line). A client that stops reading is dropped once
// kMaxPendingOutput bytes wait for it. When a client leaves, breakpoints
// are removed and the guest runs on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "vmm/gdb/target.h"

namespace vmm::gdb {

struct GdbEndpoint {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host = "127.0.0.1";  // kTcp
  uint16_t port = 0;               // kTcp; 0 picks a free port
  std::string path;                // kUnix

  std::string ToString() const;
};

// "tcp:PORT", "tcp:HOST:PORT" (also QEMU's "tcp::PORT": loopback) or
// "unix:PATH". Errors name what is wrong with `spec`.
[[nodiscard]] base::Result<GdbEndpoint> ParseGdbEndpoint(std::string_view spec);

class GdbServer {
 public:
  static constexpr size_t kMaxPendingOutput = 1 << 20;

  // Binds the endpoint and starts the server's thread. The target must
  // outlive the server.
  [[nodiscard]] static base::Result<std::unique_ptr<GdbServer>> Start(const GdbEndpoint& endpoint,
                                                                      GdbTarget& target);
  // Closes the client and the socket and joins the thread; the target's
  // stop handler is cleared first.
  ~GdbServer();
  GdbServer(const GdbServer&) = delete;
  GdbServer& operator=(const GdbServer&) = delete;

  // Where gdb connects, as `target remote` takes it ("127.0.0.1:1234",
  // or the socket path).
  std::string address() const;
  // The bound TCP port (the one a port 0 got); 0 for a Unix socket.
  uint16_t port() const;

 private:
  class Impl;
  explicit GdbServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmm::gdb
