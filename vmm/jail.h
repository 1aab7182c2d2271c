// `--jail DIR --uid U --gid G`: what the jail (base/sandbox/jail.h) must
// hold for a VM's configuration, and entering it from vmm's main thread
// before anything else starts (docs/security.md, "Jail").
//
// Main thread only, before ConfigureSeccomp and Vm::Create.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/sandbox/jail.h"
#include "vmm/config.h"

namespace vmm {

struct JailFlags {
  std::string dir;
  base::sandbox::JailIds ids;
};

// --jail, --uid and --gid as given: none of them, or all three (kUsage
// naming the missing or stray flag); the ids parsed by ParseJailId.
[[nodiscard]] base::Result<std::optional<JailFlags>> ParseJailFlags(
    const std::optional<std::string>& dir, const std::optional<std::string>& uid,
    const std::optional<std::string>& gid);

// The device vmm opens for KVM: $VMM_KVM_DEVICE or /dev/kvm, as
// vmm/builder.cc OpenKvm reads it.
std::string KvmDevicePath();

// Rewrites every path in `config` to its canonical absolute form (symlinks
// resolved), so that it names the same file inside the jail, where the
// working directory is "/": the kernel, initrds and disks must exist
// (kNoInput naming the flag); for output files and sockets that do not exist
// yet, their folder must.
[[nodiscard]] base::Result<void> CanonicalizeForJail(VmConfig& config);

// The jail's binds for a canonical `config` (CanonicalizeForJail): the
// kernel and initrds read-only; each disk read-only or read-write as its
// mode says; an output file that exists read-write (a device node as a
// device), one that does not by its folder, read-write; the folder of each
// socket read-write (vmm creates and removes the socket there); the KVM
// device as a device, when it exists (if not, vmm ends with 69 inside, as
// it would outside).
[[nodiscard]] base::Result<std::vector<base::sandbox::JailNeed>> JailNeedsFor(
    const VmConfig& config, const std::string& kvm_device);

// The sockets vmm creates (removed by the supervisor if left behind).
std::vector<std::string> JailSockets(const VmConfig& config);

// What the jail cannot hold (kUsage naming the flag): a TCP listener
// (--vnc HOST:N), unreachable from the host since the jail's network
// namespace has nothing but a loopback that is down; and --vnc unix:PATH,
// whose vmm-vnc helper is a dynamically linked program the jail (noexec,
// no libraries) does not hold.
[[nodiscard]] base::Result<void> CheckJailCanHold(const VmConfig& config);

// All of it: checks the caller and DIR, canonicalizes `config`, plans the
// mounts and enters the jail. Returns in the jailed vmm only (the
// supervisor exits with its status); `config` then names the same files.
[[nodiscard]] base::Result<void> EnterJailFor(VmConfig& config, const JailFlags& flags);

}  // namespace vmm
