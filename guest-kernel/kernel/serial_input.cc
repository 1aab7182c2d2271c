#include "kernel/serial_input.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "kernel/console.h"

namespace kernel {
namespace {

// 16550A (PC16550D datasheet): RBR 0, IER 1, IIR 2, MCR 4, LSR 5.
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint8_t kIrq = 4;
constexpr uint8_t kIerRxAvailable = 0x01;
constexpr uint8_t kMcrNormal = 0x0b;    // DTR, RTS, OUT2
constexpr uint8_t kMcrLoopback = 0x1b;  // + LOOP

constinit char g_ring[256];
constinit uint32_t g_head = 0, g_tail = 0;
constinit uint64_t g_irqs = 0;
constinit bool g_echo = true;

}  // namespace

void SerialInputInit() {
  arch::IoApicRoute(kIrq);
  while ((arch::Inb(kCom1 + 5) & 1) != 0) (void)arch::Inb(kCom1);  // drain
  arch::Outb(kCom1 + 1, kIerRxAvailable);
}

void SerialIrq() {
  ++g_irqs;
  for (int i = 0; i < 64 && (arch::Inb(kCom1 + 5) & 1) != 0; ++i) {
    const char c = static_cast<char>(arch::Inb(kCom1));
    if (g_head - g_tail < sizeof(g_ring)) g_ring[g_head++ % sizeof(g_ring)] = c;
    if (g_echo) {
      if (c == '\r') {
        ConsoleWrite("\r\n", 2);
      } else {
        ConsoleWrite(&c, 1);
      }
      ConsoleFlush();
    }
  }
}

size_t SerialRead(char* buf, size_t cap) {
  size_t n = 0;
  while (n < cap && g_tail != g_head) buf[n++] = g_ring[g_tail++ % sizeof(g_ring)];
  return n;
}

uint64_t SerialIrqCount() { return g_irqs; }

void SerialLoopback(bool on) {
  g_echo = !on;
  arch::Outb(kCom1 + 4, on ? kMcrLoopback : kMcrNormal);
}

bool SerialDataReady() { return (arch::Inb(kCom1 + 5) & 1) != 0; }

}  // namespace kernel
