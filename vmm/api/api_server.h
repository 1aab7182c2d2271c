// The control API: HTTP/1.1 with JSON bodies on a Unix socket (--api-sock),
// in Firecracker's manner, so `curl --unix-socket PATH http://localhost/vm`
// works. docs/api.md describes it; docs/openapi.yaml is the schema.
//
//   GET /vm                      200 VmControl::Info()
//   PUT /vm/state  {"state": "Paused"|"Resumed"}                    204
//   PUT /actions   {"action": "Shutdown"|"Reset"|"SendCtrlAltDel"}  204
//   GET /metrics                 200 VmControl::Metrics() + "api" counters
//
// Errors: {"fault_message": "..."} with 400 (malformed HTTP or JSON, unknown
// fields or values, a refused VM operation), 404 (unknown path), 405 (wrong
// method, with Allow), 413/414/431 (size limits), 500 (VM operation failed),
// 501 (Transfer-Encoding), 505 (HTTP version).
//
// Threads: everything runs on the io_context thread; VmControl methods are
// called there and must be quick. ApiServer is created on the main thread
// and destroyed after the io_context has stopped (as Console; if the
// io_context is destroyed first, the server closes its socket then).
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "base/error.h"
#include "vmm/api/http.h"
#include "vmm/api/vm_control.h"

namespace base {
class UnixListener;
class IoShutdownHooks;
}  // namespace base

namespace vmm {

// Request routing, without sockets (unit-testable). Not thread-safe.
class ApiRouter {
 public:
  explicit ApiRouter(VmControl& vm) : vm_(vm) {}

  http::Response Handle(const http::Request& request);

  // Counts a request the parser rejected (it never reaches Handle).
  void CountRejected() {
    ++requests_;
    ++errors_;
  }
  uint64_t requests() const { return requests_; }
  uint64_t errors() const { return errors_; }

 private:
  http::Response Route(const http::Request& request);
  http::Response PutState(const http::Request& request);
  http::Response PutAction(const http::Request& request);

  VmControl& vm_;
  uint64_t requests_ = 0;
  uint64_t errors_ = 0;  // responses with status >= 400
};

// Connection limits (docs/api.md, "Limits"). A new connection is always
// accepted: when the table is full, the connection that has waited longest
// without a request in progress is closed to make room (or, when every one
// is inside a request, the one whose request began first), so clients that
// hold connections open cannot lock the operator out. One client process
// (SO_PEERCRED pid) holds at most max_per_client connections; its oldest
// goes when it opens another.
struct ApiServerOptions {
  http::Limits limits;
  size_t max_connections = 16;
  size_t max_per_client = 4;
  // A whole request, from its first byte to the end of its response; not
  // extended by the client trickling bytes.
  std::chrono::milliseconds request_timeout{10000};
  // Between requests on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{60000};
};

class ApiServer {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<ApiServer>> Create(
      asio::io_context& io, const std::string& socket_path, VmControl& vm,
      ApiServerOptions options = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  const std::string& socket_path() const;

 private:
  class Connection;
  ApiServer(asio::io_context& io, VmControl& vm, ApiServerOptions options);
  void Accept();
  // Closes connections so that one more from `pid` fits the limits.
  void MakeRoom(pid_t pid);

  asio::io_context& io_;
  ApiRouter router_;
  ApiServerOptions options_;
  std::unique_ptr<base::UnixListener> listener_;
  std::string socket_path_;
  // Every open connection (io thread only); a Connection removes itself
  // when it closes, so the size is the number open.
  std::list<std::weak_ptr<Connection>> open_;
  // Shared with connections so they can tell the server is gone.
  std::shared_ptr<bool> alive_;
  // As Console: if the io_context is destroyed first, the listener goes then.
  base::IoShutdownHooks* io_hooks_ = nullptr;
  uint64_t io_hook_token_ = 0;
};

}  // namespace vmm
