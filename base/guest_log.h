// Rate-limited logging of guest misbehaviour (docs/conventions.md: "guest
// misbehaviour is logged (rate-limited) and counted, never fatal").
//
// A guest can hammer a register millions of times a second; each device owns
// one GuestLog and reports through it. Every report is counted; at most
// kBurst messages are logged per kWindow, and the first message after a quiet
// window says how many were suppressed. Thread-safe (a small leaf mutex; it
// calls only spdlog while holding it).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace base {

class GuestLog {
 public:
  static constexpr uint32_t kBurst = 10;
  static constexpr std::chrono::seconds kWindow{1};

  explicit GuestLog(std::string device) : device_(std::move(device)) {}

  // Counts one guest error and logs it at warning level unless rate-limited.
  template <typename... Args>
  void Warn(fmt::format_string<Args...> format, Args&&... args) {
    count_.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (!Admit(&suppressed)) return;
    std::string text = fmt::format(format, std::forward<Args>(args)...);
    if (suppressed != 0) {
      spdlog::warn("{}: {} ({} similar messages suppressed)", device_, text, suppressed);
    } else {
      spdlog::warn("{}: {}", device_, text);
    }
  }

  // Guest errors reported so far (logged or not).
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  bool Admit(uint64_t* suppressed) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= kWindow) {
      window_start_ = now;
      in_window_ = 0;
    }
    if (in_window_ >= kBurst) {
      ++suppressed_;
      return false;
    }
    ++in_window_;
    *suppressed = std::exchange(suppressed_, 0);
    return true;
  }

  std::string device_;
  std::atomic<uint64_t> count_{0};
  std::mutex mutex_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace base
