// Local APIC (x2APIC MSRs when CPUID.1:ECX[21], else xAPIC MMIO at
// 0xfee00000), IOAPIC at 0xfec00000, 8259 PIC masking, PIT channel 0 for
// calibration (Intel SDM vol. 3A ch. 11; 82093AA IOAPIC datasheet; 8254 PIT).
#pragma once

#include <stdint.h>

namespace arch {

inline constexpr uint8_t kVecTimer = 0x20;
inline constexpr uint8_t kVecIrqBase = 0x30;  // IOAPIC pin n -> 0x30 + n
inline constexpr uint8_t kVecSpurious = 0xff;

// `mmio_virt(phys)` maps an MMIO page uncached and returns its address; the
// APIC code calls it for the xAPIC and IOAPIC pages.
using MmioMapper = uint64_t (*)(uint64_t phys);

struct ApicInfo {
  bool x2apic;
  uint32_t id;
  uint64_t timer_hz;  // LAPIC timer ticks per second (divide by 16)
  uint64_t tsc_hz;    // TSC ticks per second
  bool calibrated;    // false: the PIT did not answer, defaults used
  uint64_t pit_ticks, polls, lapic_ticks, tsc_ticks;  // raw calibration data
};

// Masks the 8259s, enables the LAPIC, calibrates its timer and the TSC
// against PIT channel 0 over `calibrate_ms`.
ApicInfo ApicInit(MmioMapper map, uint32_t calibrate_ms);
// Periodic timer interrupts at `hz` on kVecTimer.
void ApicStartTimer(uint32_t hz);
void ApicEoi();
// Routes IOAPIC pin `irq` (edge, active high) to this CPU at kVecIrqBase + irq.
void IoApicRoute(uint8_t irq);
const ApicInfo& Apic();

}  // namespace arch
