#include "arch/x86_64/apic.h"

#include "arch/x86_64/cpu.h"

namespace arch {
namespace {

// LAPIC registers (SDM vol. 3A table 11-1; x2APIC MSR = 0x800 + offset/16).
constexpr uint32_t kRegId = 0x20;
constexpr uint32_t kRegEoi = 0xb0;
constexpr uint32_t kRegSvr = 0xf0;
constexpr uint32_t kRegLvtTimer = 0x320;
constexpr uint32_t kRegInitialCount = 0x380;
constexpr uint32_t kRegCurrentCount = 0x390;
constexpr uint32_t kRegDivide = 0x3e0;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtPeriodic = 1u << 17;
constexpr uint64_t kApicBaseEnable = 1ull << 11;
constexpr uint64_t kApicBaseX2 = 1ull << 10;
constexpr uint64_t kXapicPhys = 0xfee00000;
constexpr uint64_t kIoapicPhys = 0xfec00000;

// PIT (8254): 1.193182 MHz input; channel 2 gated by port 0x61 bit 0, its
// output readable at port 0x61 bit 5.
constexpr uint64_t kPitHz = 1193182;

constinit ApicInfo g_info = {};
constinit uint64_t g_xapic = 0;
constinit uint64_t g_ioapic = 0;

uint32_t Read(uint32_t reg) {
  if (g_info.x2apic) return static_cast<uint32_t>(Rdmsr(0x800 + (reg >> 4)));
  return *reinterpret_cast<volatile uint32_t*>(g_xapic + reg);
}
void Write(uint32_t reg, uint32_t value) {
  if (g_info.x2apic) {
    Wrmsr(0x800 + (reg >> 4), value);
  } else {
    *reinterpret_cast<volatile uint32_t*>(g_xapic + reg) = value;
  }
}

void IoApicWrite(uint32_t reg, uint32_t value) {
  *reinterpret_cast<volatile uint32_t*>(g_ioapic) = reg;           // IOREGSEL
  *reinterpret_cast<volatile uint32_t*>(g_ioapic + 0x10) = value;  // IOWIN
}

}  // namespace

ApicInfo ApicInit(MmioMapper map, uint32_t calibrate_ms) {
  // Mask both 8259s (ICW-less: OCW1 only); interrupts come through the IOAPIC.
  Outb(0x21, 0xff);
  Outb(0xa1, 0xff);

  g_info.x2apic = (Cpuid(1).ecx & (1u << 21)) != 0;
  uint64_t base = Rdmsr(kMsrApicBase);
  base |= kApicBaseEnable;
  if (g_info.x2apic) base |= kApicBaseX2;
  Wrmsr(kMsrApicBase, base);
  if (!g_info.x2apic) g_xapic = map(kXapicPhys);
  g_ioapic = map(kIoapicPhys);
  g_info.id = g_info.x2apic ? Read(kRegId) : Read(kRegId) >> 24;
  Write(kRegSvr, 0x100 | kVecSpurious);  // software enable
  Write(kRegDivide, 0x3);                // divide by 16
  Write(kRegLvtTimer, kLvtMasked | kVecTimer);

  // Calibration against PIT channel 0 (8254 datasheet): mode 0, count
  // 0xffff, then read the counter back with latch commands until
  // `calibrate_ms` worth of PIT ticks have passed. Channel 0 rather than the
  // channel 2 gate of port 0x61: QEMU microvm has no port 0x61 (it reads
  // 0xff), while every PC-compatible PIT model answers ports 0x40/0x43.
  // The IRQ 0 its terminal count raises is masked at the 8259 and IOAPIC.
  const uint64_t pit_ticks = kPitHz * calibrate_ms / 1000;
  Outb(0x43, 0x30);  // channel 0, lo/hi, mode 0, binary
  Outb(0x40, 0xff);
  Outb(0x40, 0xff);
  Write(kRegInitialCount, 0xffffffff);
  const uint64_t tsc0 = Rdtsc();
  bool done = false;
  uint32_t last = 0xffff;
  uint64_t elapsed = 0;
  uint32_t i = 0;
  uint32_t unchanged = 0;
  for (; i < 100000; ++i) {
    Outb(0x43, 0x00);  // latch channel 0
    const uint32_t lo = Inb(0x40);
    const uint32_t now = lo | (static_cast<uint32_t>(Inb(0x40)) << 8);
    if (now > last) break;  // wrapped: cannot happen within 55 ms of mode 0
    // No PIT (reads float to 0xff) or a stopped one: give up early.
    unchanged = now == last ? unchanged + 1 : 0;
    if (unchanged > 500) break;
    elapsed += last - now;
    last = now;
    if (elapsed >= pit_ticks) {
      done = true;
      break;
    }
  }
  const uint64_t tsc1 = Rdtsc();
  const uint32_t remaining = Read(kRegCurrentCount);
  Write(kRegInitialCount, 0);
  g_info.pit_ticks = elapsed;
  g_info.polls = i;
  g_info.lapic_ticks = 0xffffffffu - remaining;
  g_info.tsc_ticks = tsc1 - tsc0;
  // Scale by the ticks actually elapsed (the last poll overshoots a little).
  if (done) {
    g_info.timer_hz = static_cast<uint64_t>(0xffffffffu - remaining) * kPitHz / elapsed;
    g_info.tsc_hz = (tsc1 - tsc0) * kPitHz / elapsed;
    g_info.calibrated = true;
  } else {
    g_info.timer_hz = 1000000000 / 16;  // KVM's LAPIC runs at 1 GHz before the divider
    g_info.tsc_hz = 2000000000;
    g_info.calibrated = false;
  }
  return g_info;
}

void ApicStartTimer(uint32_t hz) {
  uint64_t count = g_info.timer_hz / hz;
  if (count == 0) count = 1;
  if (count > 0xffffffff) count = 0xffffffff;
  Write(kRegLvtTimer, kLvtPeriodic | kVecTimer);
  Write(kRegInitialCount, static_cast<uint32_t>(count));
}

void ApicEoi() { Write(kRegEoi, 0); }

void IoApicRoute(uint8_t irq) {
  // Redirection table entry n at registers 0x10 + 2n (low) and 0x11 + 2n
  // (high: destination APIC ID in bits 56..63). Fixed delivery, physical
  // destination, edge, active high, unmasked.
  IoApicWrite(0x11 + 2u * irq, g_info.id << 24);
  IoApicWrite(0x10 + 2u * irq, kVecIrqBase + irq);
}

const ApicInfo& Apic() { return g_info; }

}  // namespace arch
