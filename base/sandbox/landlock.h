// Landlock: a process restricts its own filesystem access (Linux >= 5.13;
// docs/security.md, "Landlock"). Raw system calls, no library.
//
// RestrictFilesystem() applies to the calling thread and the threads and
// processes it starts afterwards, not to threads that already run; call it
// before starting the threads that should be confined. Files already open
// stay usable: the rules only decide later open(2)s, unlinks and the like.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"

namespace base::sandbox {

// What a rule grants beneath its path.
enum class FsAccess : uint8_t {
  kReadFile,       // open a regular file for reading
  kReadWriteFile,  // ... for reading and writing (and truncate it)
  kWriteFile,      // ... for writing (output files)
  kRemoveInDir,    // a directory: make sockets and unlink files in it (vmm's sockets)
};

struct FsRule {
  std::string path;
  FsAccess access;
};

// The kernel's Landlock ABI version: 0 when the kernel has no Landlock
// (ENOSYS) or it is disabled (EOPNOTSUPP).
int LandlockAbi();

struct LandlockOutcome {
  int abi = 0;           // 0: not applied (no Landlock here)
  size_t rules = 0;      // rules added
  uint64_t handled = 0;  // the access rights the ruleset restricts
};

// Creates a ruleset handling every filesystem right the kernel's ABI knows,
// adds `rules` (a path that does not exist is an error: kNoInput), sets
// no_new_privs and restricts the calling thread. Without Landlock, returns
// abi 0 and changes nothing.
[[nodiscard]] Result<LandlockOutcome> RestrictFilesystem(std::span<const FsRule> rules);

}  // namespace base::sandbox
