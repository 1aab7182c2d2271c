// COM1 console output (16550A at 0x3f8, docs/architecture.md "Machine layout").
//
// Output is buffered and leaves with one `rep outsb` per Print (or when the
// 256-byte buffer fills): under KVM that is one KVM_EXIT_IO (with count =
// bytes) instead of one exit per byte. Copies use `rep movsb`: under an
// emulating KVM each guest memory access costs microseconds, a string
// instruction moves many bytes per step.
// LSR.THRE is never polled: vmm's and QEMU's 16550 take every byte at once.
// Single CPU; callers with interrupts enabled hold no lock (output from an
// interrupt handler may interleave with a half-built line, never lose it).
#pragma once

#include "lib/format.h"

namespace kernel {

void ConsoleInit();
void ConsoleWrite(const char* data, size_t size);
void ConsoleFlush();

class ConsoleSink final : public lib::Sink {
 public:
  void Put(const char* data, size_t size) override { ConsoleWrite(data, size); }
};

template <typename... Args>
void Print(const char* fmt, Args... args) {
  ConsoleSink sink;
  lib::FormatTo(sink, fmt, args...);
  ConsoleFlush();
}

}  // namespace kernel
