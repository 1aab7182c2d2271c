// Callbacks that run when an asio::io_context shuts down (in its destructor,
// while its services still exist).
//
// Console and ApiServer own asio objects (sockets, timers, descriptors) whose
// destructors call into the io_context's services. If the io_context is
// destroyed first (say the owner declared it after them), those destructors
// would use freed services. Each such object registers a hook that closes
// and destroys its asio objects at shutdown, and removes the hook if it goes
// away first. Thread-safe.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace base {

class IoShutdownHooks : public asio::execution_context::service {
 public:
  using key_type = IoShutdownHooks;
  static inline asio::execution_context::id id;

  explicit IoShutdownHooks(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  // The hooks of `io`, created on first use.
  static IoShutdownHooks& Of(asio::io_context& io) {
    return asio::use_service<IoShutdownHooks>(io);
  }

  // Returns a token for Remove.
  uint64_t Add(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    hooks_.emplace(next_, std::move(hook));
    return next_++;
  }

  void Remove(uint64_t token) {
    std::lock_guard lock(mu_);
    hooks_.erase(token);
  }

 private:
  void shutdown() override {
    std::map<uint64_t, std::function<void()>> hooks;
    {
      std::lock_guard lock(mu_);
      hooks.swap(hooks_);
    }
    for (auto& [token, hook] : hooks) hook();
  }

  std::mutex mu_;
  std::map<uint64_t, std::function<void()>> hooks_;
  uint64_t next_ = 1;
};

}  // namespace base
