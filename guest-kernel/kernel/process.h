// Processes: an address space (lower half of its own PML4, upper half shared
// with the kernel), one thread for now, a lazily backed heap and stack, an
// exit status. User programs are the ELF64 images linked into the kernel
// (section .user_images, see guest-kernel/user/).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/trap.h"
#include "kernel/sched.h"
#include "kernel/token.h"

namespace kernel {

enum class ProcessState : uint8_t { kRunning, kExited, kKilled };

struct Endpoint;

inline constexpr uint32_t kMaxThreads = 4;

struct Process {
  uint32_t pid = 0;
  char name[16] = {};
  uint64_t root = 0;         // PML4 physical address
  Thread* thread = nullptr;  // the main thread (threads[0])
  Thread* threads[kMaxThreads] = {};
  uint32_t thread_count = 0;
  uint8_t priority = 0;
  TokenTable tokens;             // handle 1: its own kObjProcess token
  Token* token = nullptr;        // root process token (held by whoever spawned it)
  Endpoint* fault_ep = nullptr;  // supervisor: faults are reported there
  uint64_t fault_badge = 0;
  uint32_t given = 0;  // handles given before start (kOpGive)
  struct PortRange {
    uint32_t first, count;
  };
  PortRange ports[4] = {};  // I/O ports opened with kOpAllowPorts
  uint32_t port_ranges = 0;
  bool started = false;
  ProcessState state = ProcessState::kRunning;
  int64_t exit_code = 0;
  // Set when killed by an exception (reported to the supervisor in part 2).
  uint64_t fault_vector = 0, fault_error = 0, fault_address = 0, fault_rip = 0;
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
// With `start` false the main thread stays suspended until StartProcess.
Process* Spawn(const char* name, size_t len, uint8_t priority, Process* parent, uint64_t arg,
               int64_t* error, bool start = true);
void StartProcess(Process* p, uint64_t arg);
// A second (third, ...) thread of `p` with its own IPC buffer; returns its
// index or an abi error.
int64_t CreateThreadIn(Process* p, uint64_t entry, uint64_t stack_top, uint64_t arg);
// Maps a frames/MMIO token's range into `p` at `va` (recorded in the token,
// undone by UnmapThroughToken, on revoke and on close).
int64_t MapThroughToken(Process* p, Token* t, uint64_t va, bool writable);
void UnmapThroughToken(Token* t);
// Kernel-side close of a handle: unmaps what was mapped through it first.
int64_t CloseHandle(Process* p, uint64_t handle);
// Opens a port range for `p` (kOpAllowPorts): kOk or kErrNoSlots.
int64_t AllowPorts(Process* p, uint32_t first, uint32_t count);
// Keeps the TSS I/O bitmap in step with the process about to run (scheduler):
// inline so that a switch between processes without ports costs two loads.
extern Process* g_io_process;  // whose ports are open, nullptr: none
void SwitchIoPortsSlow(Process* next);
inline void SwitchIoPorts(Process* next) {
  if (g_io_process != nullptr || (next != nullptr && next->port_ranges != 0)) {
    if (next != g_io_process) SwitchIoPortsSlow(next);
  }
}
// Every process that has ever been spawned (for kOpProcessInfo).
Process* ProcessAt(size_t index);
// The kernel command line (main.cc).
const char* KernelCmdline();
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
