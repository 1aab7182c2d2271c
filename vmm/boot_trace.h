// --boot-trace: timestamps of boot milestones, printed on stderr as
//   boot-trace: <event> <milliseconds since vmm started, 3 decimals> ms
// one line each (format is a contract: `vmm suite` parses it; docs/boot-trace.md).
// Events: vm-created, kernel-loaded, first-run, phase-0xNN (a write to the
// boot-phase port), first-serial-byte, exit. The clock starts when vmm's
// static initialisers run, just before main(): the dynamic loader's time
// (well under a millisecond) is not included.
#pragma once

#include <string_view>

namespace vmm::boot_trace {

void Enable(bool enabled);
bool enabled();
// Milliseconds since process start (always available, also when disabled).
double ElapsedMs();
// Prints the event line when enabled. Thread-safe.
void Mark(std::string_view event);

}  // namespace vmm::boot_trace
