#include "vmm/vm_exit.h"

#include <fmt/format.h>

#include <csignal>

namespace vmm {

VmExit VmExit::QemuGuestStatus(uint32_t value) {
  return VmExit{static_cast<int>(((value << 1) | 1) & 0xff),
                fmt::format("guest wrote {} to the exit port (--exit-code qemu)", value), "",
                false};
}

VmExit VmExit::GuestStatus(uint32_t value) {
  if (value > 63) {
    return VmExit{
        63,
        fmt::format(
            "guest wrote {} to the exit port; statuses above 63 are reserved, exiting with 63",
            value),
        "", true};
  }
  return VmExit{static_cast<int>(value & 0xff),
                fmt::format("guest wrote {} to the exit port", value), "", false};
}

VmExit VmExit::Clean(std::string reason) { return VmExit{0, std::move(reason), "", false}; }

VmExit VmExit::TripleFault(std::string reason, std::string dump) {
  return VmExit{kExitTripleFault, std::move(reason), std::move(dump), true};
}

VmExit VmExit::KvmFailure(std::string reason, std::string dump) {
  return VmExit{kExitKvmFailure, std::move(reason), std::move(dump), true};
}

VmExit VmExit::Timeout(double seconds) {
  return VmExit{kExitTimeout,
                fmt::format("timeout: the guest was still running after {} s", seconds), "", true};
}

VmExit VmExit::Signal(int signo) {
  return VmExit{signo == SIGINT ? kExitSigint : kExitSigterm,
                fmt::format("stopped by {}", signo == SIGINT ? "SIGINT" : "SIGTERM"), "", true};
}

VmExit VmExit::StartupError(const base::Error& error) {
  return VmExit{error.exit_status(), error.ToString(), "", true};
}

}  // namespace vmm
