#include "kernel/machine.h"

#include "arch/x86_64/cpu.h"
#include "kernel/console.h"

namespace kernel {

void Phase(uint8_t code) { arch::Outb(kPhasePort, code); }

void HaltForever() {
  for (;;) {
    arch::Cli();
    arch::Hlt();
  }
}

void ExitMachine(uint32_t code) {
  ConsoleFlush();
  arch::Outl(kExitPort, code);
  HaltForever();
}

void ResetMachine() {
  ConsoleFlush();
  arch::Outb(0x64, 0xfe);  // i8042 "pulse reset line" (8042 command 0xfe)
  HaltForever();
}

void Panic(const char* message) {
  Print("\n[panic] {}\n[panic] exit {}\n", message, kExitPanic);
  ExitMachine(kExitPanic);
}

}  // namespace kernel
