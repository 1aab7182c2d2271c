// Processes: an address space (lower half of its own PML4, upper half shared
// with the kernel), one thread for now, a lazily backed heap and stack, an
// exit status. User programs are the ELF64 images linked into the kernel
// (section .user_images, see guest-kernel/user/).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/trap.h"
#include "kernel/sched.h"

namespace kernel {

enum class ProcessState : uint8_t { kRunning, kExited, kKilled };

struct Process {
  uint32_t pid = 0;
  char name[16] = {};
  uint64_t root = 0;  // PML4 physical address
  Thread* thread = nullptr;
  ProcessState state = ProcessState::kRunning;
  int64_t exit_code = 0;
  // Set when killed by an exception (reported to the supervisor in part 2).
  uint64_t fault_vector = 0, fault_error = 0, fault_address = 0, fault_rip = 0;
  bool may_spawn = false;  // interim authority (abi::kOpSpawn): init only
  bool is_init = false;
  bool seen_syscall = false;
  uint64_t lazy_pages = 0;  // pages backed on first touch
  Process* parent = nullptr;
  WaitQueue exited;
};

struct UserImage {
  const char* name;
  const uint8_t* begin;
  const uint8_t* end;
};
const UserImage* FindUserImage(const char* name, size_t len);
size_t UserImageCount();
const UserImage* UserImageAt(size_t i);

// Loads program `name`, creates its address space and thread (ready at
// `priority`, clamped to 1..255). `arg` reaches the program in RCX.
// Returns nullptr and sets *error (abi::Error) on failure.
Process* Spawn(const char* name, size_t len, uint8_t priority, Process* parent, uint64_t arg,
               int64_t* error);
// Ends the calling process (Current()->process) with `code`; does not return.
[[noreturn]] void ExitCurrentProcess(int64_t code);
// Ends a process that is not running (e.g. the test harness stopping a spinner).
void KillProcess(Process* p, int64_t code);
// Blocks until `p` has ended; returns its exit code.
int64_t WaitProcess(Process* p);
// Frees the Process record (after WaitProcess).
void ReleaseProcess(Process* p);
Process* CurrentProcess();

// A fault from ring 3. Returns true when handled (lazy heap/stack page
// backed); otherwise reports it, ends the process and switches away.
bool HandleUserFault(arch::TrapFrame* frame);

// User-pointer validation (every system call argument): [ptr, ptr+len) lies
// below abi::kUserTop without overflow, every page is present (lazy regions
// are backed now) and user-accessible, and writable when `write`.
bool ValidateUserRange(Process* p, uint64_t ptr, uint64_t len, bool write);
// Reads a user u64 through the process's page tables (tests, bench).
bool PeekUser(Process* p, uint64_t va, uint64_t* out);

}  // namespace kernel
