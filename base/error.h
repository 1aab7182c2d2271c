// Error type and propagation helpers shared by every host-side component.
//
// Project code does not throw (docs/conventions.md, "Errors"). A fallible function
// returns base::Result<T> (std::expected<T, base::Error>) and is [[nodiscard]];
// TRY(expr) unwraps a Result or returns its error from the enclosing function.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace base {

// What kind of failure this is; decides vmm's exit status (docs/architecture.md, "Exit
// status of vmm"). The values are the sysexits codes vmm exits with.
enum class ErrorKind : uint8_t {
  kUsage = 64,        // EX_USAGE: bad command line
  kBadImage = 65,     // EX_DATAERR: kernel/initrd image is malformed
  kNoInput = 66,      // EX_NOINPUT: file missing or unreadable
  kUnavailable = 69,  // EX_UNAVAILABLE: /dev/kvm missing or unusable
  kInternal = 70,     // EX_SOFTWARE: a bug or an unexpected host failure
  kConfig = 78,       // EX_CONFIG: bad configuration value
  // Not an Error's kind: a thread made a system call its seccomp filter
  // forbids (base/sandbox/seccomp.h ends vmm with it from the SIGSYS handler).
  kSeccompViolation = 83,
};

// A failure a user can act on: what failed, the errno where there is one,
// and the context (file, field, address) prepended by callers.
class Error {
 public:
  Error(ErrorKind kind, std::string message, int sys_errno = 0)
      : kind_(kind), message_(std::move(message)), sys_errno_(sys_errno) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  int sys_errno() const { return sys_errno_; }
  int exit_status() const { return static_cast<int>(kind_); }

  // "message: strerror(errno)" when an errno is attached.
  std::string ToString() const;

  // Prepends "context: " to the message; returns *this for chaining.
  Error& WithContext(std::string_view context);

 private:
  ErrorKind kind_;
  std::string message_;
  int sys_errno_;
};

template <typename T>
using Result = std::expected<T, Error>;

// Builds the unexpected value for `return MakeError(...)`.
template <typename... Args>
[[nodiscard]] std::unexpected<Error> MakeError(ErrorKind kind, fmt::format_string<Args...> format,
                                               Args&&... args) {
  return std::unexpected(Error(kind, fmt::format(format, std::forward<Args>(args)...)));
}

// Same, with the current errno attached. Call right after the failing call.
template <typename... Args>
[[nodiscard]] std::unexpected<Error> MakeErrnoError(ErrorKind kind,
                                                    fmt::format_string<Args...> format,
                                                    Args&&... args) {
  int saved = errno;
  return std::unexpected(Error(kind, fmt::format(format, std::forward<Args>(args)...), saved));
}

}  // namespace base

// Unwraps a base::Result, or returns its error from the enclosing function
// (which must itself return a Result or std::unexpected-compatible type).
// GCC statement expression, as SerenityOS' TRY.
#define TRY(expr)                                                  \
  ({                                                               \
    auto&& base_try_result_ = (expr);                              \
    if (!base_try_result_) [[unlikely]]                            \
      return std::unexpected(std::move(base_try_result_).error()); \
    std::move(base_try_result_).value();                           \
  })

// Like TRY, but prefixes the error with a context string first.
#define TRY_CTX(expr, context)                                                          \
  ({                                                                                    \
    auto&& base_try_result_ = (expr);                                                   \
    if (!base_try_result_) [[unlikely]]                                                 \
      return std::unexpected(std::move(base_try_result_).error().WithContext(context)); \
    std::move(base_try_result_).value();                                                \
  })
