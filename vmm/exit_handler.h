// KVM exit handling as a function: from the `kvm_run` of one exit to what
// the vCPU does next (ExitAction). It touches only what is passed in: the
// port and MMIO buses (the exit's data goes to and from their devices), the
// exit counters, and the exiting vCPU (ExitVcpu: instruction assists and the
// register dump). Called on the exiting vCPU's thread (vmm/vcpu.h); unit
// tests call it with made-up `kvm_run`s.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>

#include "devices/bus.h"
#include "vmm/metrics.h"
#include "vmm/vm_exit.h"

namespace vmm {

// What the exit handler needs of the exiting vCPU.
class ExitVcpu {
 public:
  virtual ~ExitVcpu() = default;
  virtual uint32_t vcpu_id() const = 0;
  // KVM_EXIT_DEBUG / KVM_EXIT_INTERNAL_ERROR: hands a ring-0 int3 back to the
  // guest (vmm/guest_debug.h) or completes an instruction KVM could not
  // emulate (vmm/insn_assist.h). True: the vCPU can run on.
  virtual bool TryAssist() = 0;
  // The register dump for a crash report.
  virtual std::string DumpState(bool with_instruction) = 0;
};

struct ExitAction {
  enum class Kind {
    kHandled,  // the exit was served; run the vCPU again
    kStop,     // the VM ends with `exit`
    kRetry,    // nothing to do (a host interrupt); run again
  };
  Kind kind = Kind::kHandled;
  std::optional<VmExit> exit;  // kStop only

  static ExitAction Handled() { return {Kind::kHandled, std::nullopt}; }
  static ExitAction Retry() { return {Kind::kRetry, std::nullopt}; }
  static ExitAction Stop(VmExit exit) { return {Kind::kStop, std::move(exit)}; }
};

// Handles the exit in `run` (KVM's shared page: port I/O data lives at
// run.io.data_offset bytes from `run`). Port reads nobody claims read all
// ones (a floating ISA bus), as do unclaimed MMIO reads.
[[nodiscard]] ExitAction HandleExit(kvm_run& run, const devices::Bus& pio, const devices::Bus& mmio,
                                    ExitVcpu& vcpu, ExitCounters& counters);

}  // namespace vmm
