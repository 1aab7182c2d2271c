// How a VM ended: the process's exit status, a one-line reason and an
// optional register dump. Built only through the named constructors below,
// one per way a VM can end (docs/design-decisions.md lists the statuses).
// A value type; any thread.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace vmm {

// Exit statuses beyond the guest's own 0..63.
inline constexpr int kExitTripleFault = 80;
inline constexpr int kExitKvmFailure = 81;
inline constexpr int kExitTimeout = 82;
inline constexpr int kExitSigint = 130;   // 128 + SIGINT, shell convention
inline constexpr int kExitSigterm = 143;  // 128 + SIGTERM

struct VmExit {
  int status = 0;
  std::string reason;     // one line for stderr
  std::string details;    // register dump etc. (may be empty)
  bool abnormal = false;  // print reason on stderr

  // The guest wrote `value` to the exit port (values above 63 become 63).
  static VmExit GuestStatus(uint32_t value);
  // --exit-code qemu: (v << 1) | 1, truncated to 8 bits as exit(3) does
  // (QEMU's isa-debug-exit).
  static VmExit QemuGuestStatus(uint32_t value);
  // A normal end with status 0: power-off, halt, reset, console quit, API.
  static VmExit Clean(std::string reason);
  // KVM_EXIT_SHUTDOWN: status 80.
  static VmExit TripleFault(std::string reason, std::string dump);
  // KVM failed or could not go on with the guest: status 81.
  static VmExit KvmFailure(std::string reason, std::string dump);
  // --timeout elapsed after `seconds`: status 82.
  static VmExit Timeout(double seconds);
  // SIGINT (130) or SIGTERM (143).
  static VmExit Signal(int signo);
  // vmm could not start the VM: the error's status and text.
  static VmExit StartupError(const base::Error& error);
};

}  // namespace vmm
