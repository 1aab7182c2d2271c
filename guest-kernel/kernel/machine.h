// Leaving the machine and reporting boot phases (docs/architecture.md, "Machine layout").
#pragma once

#include <stdint.h>

namespace kernel {

inline constexpr uint16_t kExitPort = 0xf4;   // 32-bit write of v: vmm exits with v
inline constexpr uint16_t kPhasePort = 0x80;  // boot-phase codes for --boot-trace
inline constexpr uint8_t kPhaseKernelEntry = 0x40;
inline constexpr uint8_t kPhaseUserSpaceReady = 0x41;

// Exit codes (docs/guest-kernel.md, "Exit codes").
inline constexpr uint32_t kExitOk = 0;
inline constexpr uint32_t kExitTestsFailed = 1;
inline constexpr uint32_t kExitPanic = 2;           // kernel panic (not an exception)
inline constexpr uint32_t kExitBootError = 3;       // unusable boot information
inline constexpr uint32_t kExitExceptionBase = 32;  // + vector: ring-0 exception

void Phase(uint8_t code);
// Flushes the console and writes `code` to the exit port; if nothing stops
// the machine (no exit device), halts forever.
[[noreturn]] void ExitMachine(uint32_t code);
// i8042 reset (0xfe to port 0x64).
[[noreturn]] void ResetMachine();
[[noreturn]] void HaltForever();
// Prints "[panic] <message>" and exits with kExitPanic.
[[noreturn]] void Panic(const char* message);

}  // namespace kernel
