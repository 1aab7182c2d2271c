// Interrupt-driven COM1 input: IRQ 4 through the IOAPIC, received bytes go
// into a ring buffer (the shell of part 2 reads it) and are echoed.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel {

// Moves bytes the UART already holds (typed before boot, e.g. piped into
// vmm's stdin) into the ring. ConsoleInit calls it before it switches the
// FIFOs on, which drops whatever the receiver holds (PC16550D FCR bit 0).
void SerialInputCollectEarly();
void SerialInputInit();
void SerialIrq();
// Takes up to `cap` buffered bytes; returns how many.
size_t SerialRead(char* buf, size_t cap);
uint64_t SerialIrqCount();
// Self-test support: 16550 loopback (MCR bit 4) on/off, echo suppressed.
void SerialLoopback(bool on);
// From now on input arrival signals bit 0 of `n` and the kernel stops
// echoing (the shell echoes what it wants).
struct Notification;
void SerialBindNotification(Notification* n);
// LSR bit 0 (data ready) without consuming the byte.
bool SerialDataReady();

}  // namespace kernel
