// Invoke: every kernel operation that is not IPC, named by a token handle
// (abi::InvokeOp; docs/guest-kernel.md "Invoke operations").
#pragma once

#include <stdint.h>

#include "arch/x86_64/trap.h"

namespace kernel {

struct Process;

// Runs Invoke(frame->rdi = handle, rsi = op, rdx, r10, r8, r9); a second
// result goes to frame->rdx.
int64_t SysInvoke(arch::TrapFrame* f);
// The root tokens init starts with (handles 2.. in docs order): control,
// virtio-mmio window, IRQ lines, I/O ports. Returns how many were given.
uint32_t GiveRootTokens(Process* init);

}  // namespace kernel
