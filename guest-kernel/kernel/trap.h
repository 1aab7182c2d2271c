#pragma once

#include "arch/x86_64/trap.h"

namespace kernel {

// Prints vector, name, error code, RIP, CR2 and every register, each line
// starting with "[tag]".
void ReportTrap(const char* tag, const arch::TrapFrame& frame);
// Ring-0 exception: report, then exit with 32 + vector.
[[noreturn]] void KernelException(const arch::TrapFrame& frame);

}  // namespace kernel
