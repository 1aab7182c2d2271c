#include "kernel/console.h"

#include "arch/x86_64/cpu.h"
#include "kernel/serial_input.h"

namespace kernel {
namespace {

// 16550A registers (PC16550D datasheet, table 2), offsets from the base.
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kRegIer = 1;  // interrupt enable (DLAB=0) / divisor high (DLAB=1)
constexpr uint16_t kRegFcr = 2;  // FIFO control
constexpr uint16_t kRegLcr = 3;  // line control
constexpr uint16_t kRegMcr = 4;  // modem control
constexpr uint16_t kDivisorLow = 0;

constinit char g_line[256];
constinit size_t g_len = 0;

}  // namespace

void ConsoleInit() {
  arch::Outb(kCom1 + kRegIer, 0x00);      // interrupts off until the IOAPIC routes IRQ 4
  arch::Outb(kCom1 + kRegLcr, 0x80);      // DLAB
  arch::Outb(kCom1 + kDivisorLow, 0x01);  // 115200 baud
  arch::Outb(kCom1 + kRegIer, 0x00);
  arch::Outb(kCom1 + kRegLcr, 0x03);  // 8N1
  // Switching the FIFOs on drops what the receiver holds: keep input typed
  // before boot first.
  SerialInputCollectEarly();
  arch::Outb(kCom1 + kRegFcr, 0x07);  // FIFOs on and cleared
  arch::Outb(kCom1 + kRegMcr, 0x0b);  // DTR, RTS, OUT2 (IRQ gate on PCs)
}

void ConsoleFlush() {
  if (g_len == 0) return;
  arch::OutsB(kCom1, g_line, g_len);
  g_len = 0;
}

void ConsoleWrite(const char* data, size_t size) {
  while (size > 0) {
    const size_t room = sizeof(g_line) - g_len;
    size_t n = size < room ? size : room;
    size -= n;
    char* dst = g_line + g_len;
    g_len += n;
    asm volatile("rep movsb" : "+D"(dst), "+S"(data), "+c"(n) : : "memory");
    if (g_len == sizeof(g_line)) ConsoleFlush();
  }
}

}  // namespace kernel
