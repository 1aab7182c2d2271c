// Per-thread seccomp-bpf allowlists (docs/security.md, "seccomp").
//
// Each kind of thread vmm runs (docs/architecture.md, "Threads and locks")
// has an allowlist: the system calls it makes after its set-up, each with
// the reason it is there, as data (AllowList) so that docs/security.md and
// the tests read the same table. A filter is built from it with libseccomp
// and loaded by the thread itself (EnterThread), after its set-up and before
// it handles anything a guest or a client sends; threads it starts later
// inherit it (the kernel ANDs stacked filters).
//
// A system call outside the list, in `kill` mode, traps (SECCOMP_RET_TRAP):
// a SIGSYS handler writes one line naming the thread kind and the call
// (number and name, from a table filled before any filter exists) with
// write(2) only, and ends the process with kExitSeccompViolation. In `log`
// mode the kernel logs the call (SCMP_ACT_LOG, the audit log / dmesg) and
// lets it run; `off` loads nothing.
//
// Threads: ConfigureSeccomp() once on the main thread before any thread
// that calls EnterThread() is started; EnterThread() on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace base::sandbox {

// The status vmm ends with after a forbidden system call (base::ErrorKind
// kSeccompViolation; docs/architecture.md, "Exit status").
inline constexpr int kExitSeccompViolation = 83;

enum class SeccompMode : uint8_t { kKill, kLog, kOff };

// "kill", "log" or "off"; anything else is a usage error naming `what`.
[[nodiscard]] Result<SeccompMode> ParseSeccompMode(std::string_view text, std::string_view what);
std::string_view SeccompModeName(SeccompMode mode);

enum class ThreadKind : uint8_t {
  kMain,         // vmm's main thread once every other thread runs (and the stop watchdog)
  kVcpu,         // KVM_RUN and the exit path
  kDeviceLoop,   // the device event loop (asio): ioeventfds, console, console sockets
  kControl,      // the control loop (asio): timeout, signals, the API socket
  kBlockWorker,  // a virtio-blk disk's worker
  kSuite,        // `vmm suite`: the runner, which also spawns vmm children
  kAttach,       // `vmm attach`
  kVnc,          // vmm-vnc, the live view's process (libvncserver)
  kSupervisor,   // `--jail`: the root process outside the jail that waits for vmm
};
inline constexpr ThreadKind kAllThreadKinds[] = {
    ThreadKind::kMain,    ThreadKind::kVcpu,        ThreadKind::kDeviceLoop,
    ThreadKind::kControl, ThreadKind::kBlockWorker, ThreadKind::kSuite,
    ThreadKind::kAttach,  ThreadKind::kVnc,         ThreadKind::kSupervisor};

// "main", "vcpu", "device-loop", "control", "block-worker", "suite", "attach",
// "vnc", "supervisor".
std::string_view ThreadKindName(ThreadKind kind);

// One ioctl request an allowlist admits (matched on the low 32 bits of the
// second argument, which is all the kernel reads).
struct IoctlRequest {
  uint64_t request;
  std::string_view name;
};

// One allowed system call. For "ioctl", `ioctls` lists the requests
// admitted; an empty list admits any request (only the suite runner, whose
// children open /dev/kvm under its filter).
struct SyscallRule {
  std::string_view name;  // as libseccomp spells it
  std::string_view reason;
  std::span<const IoctlRequest> ioctls = {};
};

// The whole list for a kind: the calls every thread needs (libc, libstdc++,
// spdlog, the SIGSYS handler itself), then the kind's own.
std::vector<SyscallRule> AllowList(ThreadKind kind);

// Fills the syscall-name table, installs the SIGSYS handler (kill mode) and
// builds every kind's filter once, so that a thread's EnterThread only loads
// one. Errors (kInternal) name the rule libseccomp refused. Call before
// starting the threads; idempotent per mode.
[[nodiscard]] Result<void> ConfigureSeccomp(SeccompMode mode);
SeccompMode ConfiguredSeccompMode();

// Loads `kind`'s filter on the calling thread (with no_new_privs) unless the
// configured mode is off. With the test hook compiled in
// (VMM_SECCOMP_TEST_HOOK), a thread whose kind equals the environment
// variable VMM_TEST_SECCOMP_VIOLATE then makes a forbidden system call
// (getpriority, harmless where it is allowed): nothing else.
[[nodiscard]] Result<void> EnterThread(ThreadKind kind);
// The same for threads that cannot return an error: a failure is logged and
// ends the process with status 70 (a thread never runs unconfined by
// accident).
void EnterThreadOrDie(ThreadKind kind);

// The violation line the SIGSYS handler writes, into `out` (no allocation,
// async-signal-safe); returns its length. `nr` outside the table prints as
// "?". Example: "vmm: seccomp: the vcpu thread made a forbidden system call
// 41 (socket); exiting with status 83\n".
size_t FormatViolation(std::span<char> out, ThreadKind kind, long nr);
// The name from the table filled by ConfigureSeccomp (or nullptr).
const char* SyscallName(long nr);

}  // namespace base::sandbox
