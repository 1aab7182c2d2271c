// The VMM's one asynchronous thread (docs/architecture.md, "Threads and locks").
//
// Owns an asio::io_context and the thread that runs it. Everything
// asynchronous (console input and sockets, the control API, ioeventfd
// notifications, disk completions, timers) is a handler on this context, so
// handlers never run concurrently with each other. Owned by the VM; Start()
// and Stop() are called from the main thread.
#pragma once

#include <asio.hpp>
#include <optional>
#include <thread>

#include "base/sandbox/seccomp.h"

namespace vmm {

class EventLoop {
 public:
  EventLoop() : work_(asio::make_work_guard(context_)) {}
  ~EventLoop() { Stop(); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  asio::io_context& context() { return context_; }

  // The thread loads `kind`'s seccomp filter before its first handler
  // (docs/security.md, "seccomp").
  void Start(base::sandbox::ThreadKind kind) {
    if (thread_.joinable()) return;
    thread_ = std::thread([this, kind] {
      base::sandbox::EnterThreadOrDie(kind);
      context_.run();
    });
  }

  // Cancels outstanding work and joins the thread. Idempotent.
  void Stop() {
    work_.reset();
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }

  bool running_in_loop() { return context_.get_executor().running_in_this_thread(); }

 private:
  asio::io_context context_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
};

}  // namespace vmm
