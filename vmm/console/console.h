// The guest's serial console: where COM1's output goes and its input comes from.
//
// Backends (--serial):
//   stdio        guest output to stdout; stdin to the guest. With a TTY stdin,
//                raw mode (restored on every exit path, see terminal.h) and the
//                Ctrl-A escape keys (escape.h). Without a TTY (CI, pipes) stdin
//                is forwarded as is, and EOF on stdin is not an error.
//   file:PATH    guest output appended to PATH; no input.
//   socket:PATH  a Unix socket (mode 0600) serving up to max_clients clients
//                (a new client beyond that makes the one connected longest
//                go, so the operator is never locked out). Each
//                new client first receives the ring-buffer backlog, then live
//                output; input from any client goes to the guest. `vmm attach
//                PATH` or `socat -,raw,echo=0 UNIX-CONNECT:PATH` connect to it.
//   none         output discarded (still counted and kept in the ring).
//
// Threads. Output() is called on vCPU threads (the UART's transmit register);
// everything else that is asynchronous (stdin, socket accept/read/write,
// input flow control) runs on the io_context thread, which also calls
// options.to_guest and options.on_quit. The Console is built on the main
// thread, and must be destroyed after its io_context has stopped running
// (EventLoop::Stop()). Best destroy it before the io_context too; if the
// io_context goes first, the console releases its sockets, timers and stdin
// watch at that moment (io_shutdown_hooks.h) and keeps only its output side.
//
// Output path, and why. stdio and file: Output() write(2)s directly on the
// vCPU thread, under a mutex. That keeps the bytes in the guest's order with
// no copy or thread hop, and costs one syscall per UART write, small next to
// the ~8 µs port-exit round trip that produced the byte; a terminal or a file
// drains faster than the guest can produce (≈125 KB/s at most here). Only a
// stdout reader that stops reading altogether can stall the guest, the same
// as with QEMU's stdio chardev; if stdout is non-blocking, write waits in
// poll(2) for at most 1 s per call, then drops the bytes (counted). socket:
// Output() only appends to the ring and a pending buffer under a mutex and
// posts one flush to the io thread, which copies the bytes into each client's
// write queue (asynchronous writes). A vCPU never waits on a socket client. A
// client that falls more than max_client_queue bytes behind is disconnected
// (it can reattach and gets the backlog).
//
// Input flow control. The console forwards input through options.to_guest,
// which must accept all it is given (the UART keeps a host-side queue behind
// its 16-byte FIFO). If options.guest_input_pending is set, the console stops
// reading input while that queue holds max_guest_input_pending bytes or more
// and resumes when the guest has drained it, so a 64 KiB paste loses nothing
// and a client that floods input is pushed back through its socket instead of
// filling host memory.
#pragma once

#include <unistd.h>

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vmm/console/escape.h"
#include "vmm/console/ring_buffer.h"
#include "vmm/console/serial_spec.h"

namespace base {
class UnixListener;
class IoShutdownHooks;
}  // namespace base

namespace vmm {

struct ConsoleOptions {
  // Backlog kept for clients that attach late.
  size_t ring_bytes = 64 * 1024;
  // Delivers host input to the guest (the UART's QueueInput). Called on the
  // io thread. May be empty (input is then read and dropped).
  std::function<void(std::span<const uint8_t>)> to_guest;
  // Ctrl-A x on the stdio terminal. Called on the io thread.
  std::function<void()> on_quit;
  // Optional input flow control (see above): bytes queued for the guest and
  // not yet read by it. Called on the io thread; must be cheap and thread-safe.
  std::function<size_t()> guest_input_pending;
  size_t max_guest_input_pending = 64 * 1024;
  // A socket client whose unsent output exceeds this is disconnected.
  size_t max_client_queue = 1024 * 1024;
  // Socket clients at once; each holds an fd and up to max_client_queue.
  size_t max_clients = 8;
  // stdio backend descriptors (tests substitute a pipe or a pseudo-terminal).
  int stdin_fd = STDIN_FILENO;
  int stdout_fd = STDOUT_FILENO;
  int stderr_fd = STDERR_FILENO;
  // stdio: put a TTY stdin into raw mode (and enable the escape keys).
  bool raw_mode = true;
};

// Counters for the control API. Read from any thread.
struct ConsoleStats {
  uint64_t bytes_out = 0;      // guest -> host (Output)
  uint64_t bytes_in = 0;       // host -> guest (to_guest)
  uint64_t bytes_dropped = 0;  // output lost: stdout/file write failure, lagging client buffer
  uint64_t clients = 0;        // socket clients connected now
  uint64_t clients_total = 0;  // socket clients accepted since start
};

class Console {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<Console>> Create(asio::io_context& io,
                                                                     const SerialSpec& spec,
                                                                     ConsoleOptions options);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Bytes the guest transmitted. Thread-safe; never waits on a socket client.
  void Output(std::span<const uint8_t> bytes);

  // Puts the stdio terminal back as it was. Idempotent, any thread.
  void RestoreTerminal();

  ConsoleStats stats() const;

  // The ring-buffer backlog (the most recent ring_bytes of output).
  std::vector<uint8_t> Backlog() const;

  // The last line of output (the current partial line if there is one),
  // at most 256 bytes, for the crash report ("the last serial line").
  std::string LastLine() const;

  const SerialSpec& spec() const { return spec_; }

  // Socket path when spec is socket:, else empty.
  const std::string& socket_path() const { return spec_.path; }

 private:
  struct Client;

  Console(asio::io_context& io, SerialSpec spec, ConsoleOptions options);

  // stdio input (io thread).
  [[nodiscard]] base::Result<void> StartStdio();
  void WaitStdin();
  void DrainStdin();
  void ReadStdinSync();
  void HandleTerminalInput(std::span<const uint8_t> bytes);
  bool InputBlocked() const;
  void DeliverToGuest(std::span<const uint8_t> bytes);

  // socket backend (io thread).
  void Accept();
  void StartClient(std::shared_ptr<Client> client);
  void ReadClient(std::shared_ptr<Client> client);
  void WriteClient(std::shared_ptr<Client> client);
  void DropClient(const std::shared_ptr<Client>& client);
  void Flush();

  // Closes and destroys every asio object (at io_context shutdown, or from
  // the destructor). Idempotent.
  void ReleaseIo();

  void WriteToFd(std::span<const uint8_t> bytes);      // holds out_mu_
  void AppendPending(std::span<const uint8_t> bytes);  // out_mu_ held
  void TrackLine(std::span<const uint8_t> bytes);      // holds out_mu_

  asio::io_context& io_;
  SerialSpec spec_;
  ConsoleOptions options_;

  // Output side, guarded by out_mu_ (taken on vCPU threads and the io thread).
  mutable std::mutex out_mu_;
  RingBuffer ring_;
  int out_fd_ = -1;  // stdio: options.stdout_fd; file: owned
  bool owns_out_fd_ = false;
  bool out_broken_ = false;
  std::vector<uint8_t> pending_;  // socket: bytes not yet handed to clients
  bool flush_posted_ = false;
  bool io_gone_ = false;    // the io_context shut down: nothing more to post
  uint64_t total_out_ = 0;  // sequence number of the next output byte
  std::string current_line_;
  std::string last_line_;

  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_dropped_{0};
  std::atomic<uint64_t> clients_{0};
  std::atomic<uint64_t> clients_total_{0};

  // Input side, io thread only.
  std::unique_ptr<asio::posix::stream_descriptor> stdin_;
  int stdin_fd_ = -1;  // dup of options.stdin_fd, owned by stdin_ or closed by us
  bool stdin_is_tty_ = false;
  bool stdin_eof_ = false;
  EscapeFilter escape_;
  std::unique_ptr<asio::steady_timer> stdin_retry_;
  base::IoShutdownHooks* io_hooks_ = nullptr;  // null once the io_context shut down
  uint64_t io_hook_token_ = 0;

  std::unique_ptr<base::UnixListener> listener_;
  std::list<std::shared_ptr<Client>> clients_list_;
};

}  // namespace vmm
