#include <stddef.h>

#include "arch/x86_64/trap.h"

extern "C" char trap_stubs[];

namespace arch {
namespace {

// 64-bit IDT gate (Intel SDM vol. 3A §6.14.1, figure 6-8).
struct Gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};
static_assert(sizeof(Gate) == 16);

struct [[gnu::packed]] Pointer {
  uint16_t limit;
  uint64_t base;
};

constexpr uint16_t kKernelCs = 0x08;
constexpr uint8_t kInterruptGate = 0x8e;  // present, DPL 0, 64-bit interrupt gate

alignas(16) constinit Gate g_idt[256];

void Load(const void* base, uint16_t limit) {
  Pointer p{limit, reinterpret_cast<uint64_t>(base)};
  asm volatile("lidt %0" : : "m"(p) : "memory");
}

struct Names {
  const char* mnemonic;
  const char* name;
};
constexpr Names kNames[32] = {
    {"#DE", "divide error"},
    {"#DB", "debug"},
    {"NMI", "non-maskable interrupt"},
    {"#BP", "breakpoint"},
    {"#OF", "overflow"},
    {"#BR", "bound range exceeded"},
    {"#UD", "invalid opcode"},
    {"#NM", "device not available"},
    {"#DF", "double fault"},
    {"#CSO", "coprocessor segment overrun"},
    {"#TS", "invalid TSS"},
    {"#NP", "segment not present"},
    {"#SS", "stack-segment fault"},
    {"#GP", "general protection"},
    {"#PF", "page fault"},
    {"#15", "reserved"},
    {"#MF", "x87 floating-point error"},
    {"#AC", "alignment check"},
    {"#MC", "machine check"},
    {"#XM", "SIMD floating-point exception"},
    {"#VE", "virtualization exception"},
    {"#CP", "control protection"},
    {"#22", "reserved"},
    {"#23", "reserved"},
    {"#24", "reserved"},
    {"#25", "reserved"},
    {"#26", "reserved"},
    {"#27", "reserved"},
    {"#HV", "hypervisor injection"},
    {"#VC", "VMM communication"},
    {"#SX", "security exception"},
    {"#31", "reserved"},
};

}  // namespace

const char* ExceptionName(uint64_t vector) {
  return vector < 32 ? kNames[vector].name : "interrupt";
}
const char* ExceptionMnemonic(uint64_t vector) {
  return vector < 32 ? kNames[vector].mnemonic : "IRQ";
}

// Gates are written as two 64-bit stores computed in registers: under an
// emulating KVM each guest memory access costs microseconds.
static void FillGates(size_t first, size_t last) {
  auto* raw = reinterpret_cast<volatile uint64_t*>(g_idt);
  const uint64_t base = reinterpret_cast<uint64_t>(trap_stubs);
  for (size_t i = first; i < last; ++i) {
    const uint64_t h = base + 16 * i;
    raw[2 * i] = (h & 0xffff) | (static_cast<uint64_t>(kKernelCs) << 16) |
                 (static_cast<uint64_t>(kInterruptGate) << 40) | ((h >> 16 & 0xffff) << 48);
    raw[2 * i + 1] = h >> 32;
  }
}

void IdtInit() {
  // Exceptions only: enough until interrupts are enabled (IdtInitInterrupts).
  FillGates(0, 32);
  Load(g_idt, sizeof(g_idt) - 1);
}

void IdtInitInterrupts() { FillGates(32, 256); }

void IdtSetIst(uint64_t vector, uint8_t ist) { g_idt[vector].ist = ist; }

void TripleFault() {
  Load(nullptr, 0);
  for (;;) asm volatile("ud2");  // #UD -> no gate -> #GP -> #DF -> shutdown
}

}  // namespace arch
