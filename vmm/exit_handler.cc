#include "vmm/exit_handler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <span>

namespace vmm {
namespace {

void HandleIo(kvm_run& run, const devices::Bus& pio, uint32_t vcpu, ExitCounters& counters) {
  auto* base = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
  const size_t size = run.io.size;
  for (uint32_t i = 0; i < run.io.count; ++i) {
    std::span<uint8_t> data(base + i * size, size);
    if (run.io.direction == KVM_EXIT_IO_OUT) {
      if (!pio.Write(run.io.port, data, vcpu)) {
        counters.unclaimed_pio.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (!pio.Read(run.io.port, data, vcpu)) {
      counters.unclaimed_pio.fetch_add(1, std::memory_order_relaxed);
      std::memset(data.data(), 0xff, size);  // floating ISA bus reads all ones
    }
  }
}

void HandleMmio(kvm_run& run, const devices::Bus& mmio, uint32_t vcpu, ExitCounters& counters) {
  const uint32_t len = std::min<uint32_t>(run.mmio.len, sizeof(run.mmio.data));
  std::span<uint8_t> data(run.mmio.data, len);
  if (run.mmio.is_write) {
    if (!mmio.Write(run.mmio.phys_addr, data, vcpu)) {
      counters.unclaimed_mmio.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (!mmio.Read(run.mmio.phys_addr, data, vcpu)) {
    counters.unclaimed_mmio.fetch_add(1, std::memory_order_relaxed);
    std::memset(data.data(), 0xff, len);
  }
}

}  // namespace

ExitAction HandleExit(kvm_run& run, const devices::Bus& pio, const devices::Bus& mmio,
                      ExitVcpu& vcpu, ExitCounters& counters) {
  const uint32_t id = vcpu.vcpu_id();
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      counters.io.fetch_add(1, std::memory_order_relaxed);
      HandleIo(run, pio, id, counters);
      return ExitAction::Handled();
    case KVM_EXIT_MMIO:
      counters.mmio.fetch_add(1, std::memory_order_relaxed);
      HandleMmio(run, mmio, id, counters);
      return ExitAction::Handled();
    case KVM_EXIT_INTR:
      return ExitAction::Retry();
    case KVM_EXIT_HLT:
      // With the in-kernel LAPIC, HLT is handled in KVM; an exit here means
      // the guest halted for good.
      return ExitAction::Stop(VmExit::Clean("guest halted"));
    case KVM_EXIT_SHUTDOWN:
      return ExitAction::Stop(VmExit::TripleFault(
          fmt::format("guest triple-faulted (KVM shutdown exit) on vcpu {}", id),
          vcpu.DumpState(false)));
    case KVM_EXIT_FAIL_ENTRY:
      return ExitAction::Stop(VmExit::KvmFailure(
          fmt::format("KVM could not enter the guest on vcpu {} (hardware reason {:#x})", id,
                      run.fail_entry.hardware_entry_failure_reason),
          vcpu.DumpState(false)));
    case KVM_EXIT_DEBUG:  // a ring-0 int3 goes back to the guest as #BP (vmm/guest_debug.h)
    case KVM_EXIT_INTERNAL_ERROR: {
      if (vcpu.TryAssist()) return ExitAction::Handled();
      const bool emulation = run.exit_reason == KVM_EXIT_INTERNAL_ERROR &&
                             run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION;
      return ExitAction::Stop(VmExit::KvmFailure(
          emulation ? fmt::format("KVM could not emulate an instruction on vcpu {}", id)
                    : fmt::format("KVM internal error (suberror {}) on vcpu {}",
                                  run.internal.suberror, id),
          vcpu.DumpState(true)));
    }
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run.system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          return ExitAction::Stop(VmExit::Clean("guest powered off"));
        case KVM_SYSTEM_EVENT_RESET:
          return ExitAction::Stop(VmExit::Clean("guest reset the machine"));
        default:
          return ExitAction::Stop(VmExit::KvmFailure(
              fmt::format("guest system event {} (crash)", run.system_event.type),
              vcpu.DumpState(false)));
      }
    default:
      counters.other.fetch_add(1, std::memory_order_relaxed);
      return ExitAction::Stop(VmExit::KvmFailure(
          fmt::format("unexpected KVM exit reason {} on vcpu {}", run.exit_reason, id),
          vcpu.DumpState(false)));
  }
}

}  // namespace vmm
