// What vmm does to confine itself once the VM is built and before its
// threads start (docs/security.md, "Confinement"): Landlock on the paths the
// configuration names, then RLIMIT_NOFILE and RLIMIT_AS. Main thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "base/sandbox/landlock.h"
#include "vmm/config.h"

namespace vmm {

// Descriptors vmm may open after the limit is set: 16 API connections, 8
// console clients per socket (two sockets), accepts in flight and asio's
// per-socket slack, rounded up (docs/security.md, "Resource limits").
inline constexpr uint64_t kFdMargin = 64;

// Address space beyond what is mapped when the limit is set (guest RAM is
// mapped by then): for each thread still to start (the vCPUs, the two event
// loops, the stop watchdog) its stack plus a malloc arena (glibc reserves
// 2 x 64 MiB while it aligns a new one), and 256 MiB for everything else.
uint64_t AddressSpaceMargin(uint32_t cpus);

// The Landlock rules for `config`: kernel and initrds readable, disks
// readable (and writable unless read-only), file: outputs writable, the
// folders of the sockets, the --vnc one included (unlinked at the end) and /proc/self/status (the
// exit summary) readable.
std::vector<base::sandbox::FsRule> LandlockRules(const VmConfig& config);

// Applies both; Landlock's absence is logged at info level, not an error.
[[nodiscard]] base::Result<void> ConfineAfterBuild(const VmConfig& config);

}  // namespace vmm
