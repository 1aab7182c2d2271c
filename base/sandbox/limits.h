// Resource limits vmm sets on itself once the VM is built
// (docs/security.md, "Resource limits").
#pragma once

#include <cstdint>

#include "base/error.h"

namespace base::sandbox {

struct LimitsOutcome {
  uint64_t nofile = 0;    // RLIMIT_NOFILE set (soft = hard)
  uint64_t as_bytes = 0;  // RLIMIT_AS set (soft = hard)
  uint64_t vm_size = 0;   // the address space in use when it was set
};

// RLIMIT_NOFILE: the highest open descriptor + 1 + `fd_margin`;
// RLIMIT_AS: the address space mapped now (VmSize, guest RAM included) +
// `as_margin`. Both soft and hard, so they cannot be raised again; neither
// is ever raised above the limit already in force.
[[nodiscard]] Result<LimitsOutcome> LimitResources(uint64_t fd_margin, uint64_t as_margin);

// VmSize of /proc/self/status, in bytes.
[[nodiscard]] Result<uint64_t> AddressSpaceInUse();
// The highest open descriptor (from /proc/self/fd, or by probing when that
// cannot be read), -1 when none.
[[nodiscard]] Result<int> HighestOpenFd();
// The same by fcntl(F_GETFD) below the fd table's size (FDSize in
// /proc/self/status, else RLIMIT_NOFILE; 64..1 << 20): for a process that
// cannot read its /proc/self/fd (after the jail's uid change it is not
// dumpable, so the directory is root's).
int HighestOpenFdByProbing();

}  // namespace base::sandbox
