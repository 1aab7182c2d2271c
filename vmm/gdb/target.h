// What the GDB stub debugs: a machine of vCPUs with registers, guest-virtual
// memory, breakpoints and a run control (docs/gdb.md). GdbSession
// (vmm/gdb/session.h) speaks the protocol; a GdbTarget carries it out. The
// VM implements it over KVM; tests implement it with a simulated CPU.
//
// All-stop: every vCPU is stopped while the session reads or writes state;
// Resume() lets them run, and when any of them stops (a breakpoint, a
// watchpoint, a finished step, Interrupt()) all of them stop and the target
// reports one StopEvent through the callback given to SetStopHandler().
//
// Threads: every method is called on the session's thread. The stop handler
// may be called on any thread (a vCPU thread); it must not call back into
// the target.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vmm::gdb {

// The registers of one x86-64 vCPU, in the order of vmm's target
// description (vmm/gdb/target_xml.cc). In 32-bit and 16-bit modes the
// 64-bit registers hold the zero-extended values.
struct X86Registers {
  // rax rbx rcx rdx rsi rdi rbp rsp r8..r15: gdb's amd64 order.
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0;
  uint32_t eflags = 0;
  // cs ss ds es fs gs selectors.
  std::array<uint32_t, 6> segment{};
  // x87: st0..st7 as 80-bit values, then fctrl fstat ftag fiseg fioff
  // foseg fooff fop.
  std::array<std::array<uint8_t, 10>, 8> st{};
  std::array<uint32_t, 8> x87_control{};
  uint64_t fs_base = 0, gs_base = 0;
  uint64_t k_gs_base = 0;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0;
};

enum class BreakKind : uint8_t {
  kSoftware = 0,     // Z0
  kHardware = 1,     // Z1
  kWriteWatch = 2,   // Z2
  kReadWatch = 3,    // Z3
  kAccessWatch = 4,  // Z4
};

struct StopEvent {
  enum class Reason {
    kBreakpoint,  // a Z0 or Z1 breakpoint at the vCPU's RIP
    kWatchpoint,  // `address` was accessed (`kind` says how)
    kStep,        // a single step finished
    kInterrupt,   // Interrupt() or a pause from elsewhere
    kExited,      // the guest ended: `exit_status`; the target is gone
  };
  Reason reason = Reason::kInterrupt;
  uint32_t cpu = 0;
  uint64_t address = 0;
  BreakKind kind = BreakKind::kSoftware;
  int exit_status = 0;
};

// How one vCPU resumes.
enum class ResumeMode : uint8_t { kStop, kContinue, kStep };

class GdbTarget {
 public:
  virtual ~GdbTarget() = default;

  virtual uint32_t cpu_count() const = 0;
  // Called when the guest stops (see above). Set once, before Resume().
  virtual void SetStopHandler(std::function<void(const StopEvent&)> handler) = 0;

  [[nodiscard]] virtual base::Result<X86Registers> ReadRegisters(uint32_t cpu) = 0;
  [[nodiscard]] virtual base::Result<void> WriteRegisters(uint32_t cpu,
                                                          const X86Registers& regs) = 0;
  // Guest-virtual memory through `cpu`'s page tables. Reads/writes from the
  // start of the range up to the first page that is not mapped and returns
  // how many bytes that was (0: the first byte is not mapped).
  [[nodiscard]] virtual base::Result<size_t> ReadMemory(uint32_t cpu, uint64_t address,
                                                        std::span<uint8_t> out) = 0;
  [[nodiscard]] virtual base::Result<size_t> WriteMemory(uint32_t cpu, uint64_t address,
                                                         std::span<const uint8_t> data) = 0;

  // Breakpoints and watchpoints apply to every vCPU. `length` is the
  // watched length (1, 2, 4, 8) or the breakpoint kind gdb sends (1).
  // An error (no free debug register, a bad length) is shown by gdb.
  [[nodiscard]] virtual base::Result<void> InsertBreakpoint(BreakKind kind, uint64_t address,
                                                            uint64_t length) = 0;
  [[nodiscard]] virtual base::Result<void> RemoveBreakpoint(BreakKind kind, uint64_t address,
                                                            uint64_t length) = 0;
  // Removes every breakpoint and watchpoint (detach, disconnect).
  virtual void RemoveAllBreakpoints() = 0;

  // Stops every vCPU and waits until they are (a debugger attaching to a
  // running guest); returns why they are stopped: the stop that was pending,
  // or kInterrupt. When they are already stopped, returns at once.
  [[nodiscard]] virtual base::Result<StopEvent> Halt() = 0;
  // Lets the vCPUs run: modes[i] for vCPU i (kStop ones stay stopped).
  [[nodiscard]] virtual base::Result<void> Resume(std::span<const ResumeMode> modes) = 0;
  // Stops every vCPU soon; the stop is reported as kInterrupt unless
  // something else stopped them first. No effect when already stopped.
  virtual void Interrupt() = 0;
  // Ends the VM (gdb's `kill`).
  virtual void Kill() = 0;

  // A `monitor` command (docs/gdb.md lists them); its text output.
  [[nodiscard]] virtual base::Result<std::string> Monitor(std::string_view command) = 0;
};

}  // namespace vmm::gdb
