#include "base/sandbox/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

// Rights newer than the build host's linux/landlock.h (Debian 12 ships
// ABI 2); the values are the kernel's UAPI, which never changes them.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)  // ABI 3, Linux 6.2
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)  // ABI 5, Linux 6.10
#endif

namespace base::sandbox {
namespace {

long CreateRuleset(const landlock_ruleset_attr* attr, size_t size, uint32_t flags) {
  return ::syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

// Every filesystem right of ABI `abi` (linux/landlock.h documents which ABI
// added which right).
uint64_t HandledFor(int abi) {
  uint64_t handled =
      LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
      LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
      LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
      LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) handled |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return handled;
}

uint64_t Granted(FsAccess access) {
  switch (access) {
    case FsAccess::kReadFile:
      return LANDLOCK_ACCESS_FS_READ_FILE;
    case FsAccess::kReadWriteFile:
      return LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
             LANDLOCK_ACCESS_FS_TRUNCATE;
    case FsAccess::kWriteFile:
      return LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
    case FsAccess::kRemoveInDir:
      // The API socket is bound after the restriction (Vm::Run), the
      // console sockets before it; all are unlinked at the end.
      return LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_SOCK;
  }
  return 0;
}

}  // namespace

int LandlockAbi() {
  const long abi = CreateRuleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

Result<LandlockOutcome> RestrictFilesystem(std::span<const FsRule> rules) {
  LandlockOutcome outcome;
  outcome.abi = LandlockAbi();
  if (outcome.abi == 0) return outcome;
  outcome.handled = HandledFor(outcome.abi);

  landlock_ruleset_attr attr{};
  attr.handled_access_fs = outcome.handled;
  const long raw = CreateRuleset(&attr, sizeof(attr.handled_access_fs), 0);
  if (raw < 0) return MakeErrnoError(ErrorKind::kInternal, "landlock: creating the ruleset");
  UniqueFd ruleset(static_cast<int>(raw));

  for (const FsRule& rule : rules) {
    const int flags = O_PATH | O_CLOEXEC;
    UniqueFd parent(::open(rule.path.c_str(), flags));
    if (!parent.valid()) {
      return MakeErrnoError(ErrorKind::kNoInput, "landlock: {}", rule.path);
    }
    landlock_path_beneath_attr beneath{};
    beneath.allowed_access = Granted(rule.access) & outcome.handled;
    beneath.parent_fd = parent.get();
    if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) !=
        0) {
      return MakeErrnoError(ErrorKind::kInternal, "landlock: rule for {}", rule.path);
    }
    ++outcome.rules;
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "landlock: no_new_privs");
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "landlock: restricting vmm");
  }
  return outcome;
}

}  // namespace base::sandbox
