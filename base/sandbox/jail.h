// The jail: `vmm --jail DIR --uid U --gid G` (docs/security.md, "Jail").
//
// Entered first, while the process is still single-threaded, before any
// thread, asio context or seccomp filter exists:
//
//   1. CheckJailCaller / CheckJailDir / PlanMounts (in the caller, before
//      anything changes): root, DIR an empty root-owned directory, and the
//      list of binds.
//   2. EnterJail: unshare(CLONE_NEWPID), fork. The parent stays behind in
//      every host namespace as the supervisor (RunSupervisor): it forwards
//      SIGTERM, SIGINT and SIGHUP to the child, waits for it, removes the
//      sockets it left behind and exits with its status. It never returns.
//   3. The child (pid 1 of the new pid namespace) unshares the mount, net,
//      IPC and UTS namespaces, makes every mount private, mounts a small
//      tmpfs on DIR, bind-mounts each planned path at its own absolute path
//      beneath it, mounts a fresh /proc, pivots into DIR, detaches the old
//      root and remounts the new one read-only.
//   4. DropPrivileges: no supplementary groups, an empty capability bounding
//      set, setresgid/setresuid to G/U, no capabilities, no_new_privs.
//   5. EnterJail returns in the child, which goes on as vmm always does.
//
// Because every path keeps its host name, nothing after the jail (the
// config, Landlock's rules, the socket paths) needs rewriting.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/sandbox/seccomp.h"

namespace base::sandbox {

// How a host path appears inside the jail (always at its own absolute path).
enum class BindKind : uint8_t {
  kReadOnly,   // ro,nosuid,nodev,noexec: kernel, initrds, read-only disks
  kReadWrite,  // rw,nosuid,nodev,noexec: read-write disks, output files, socket folders
  kDevice,     // rw,nosuid,noexec, device nodes usable: /dev/kvm, a device as output
};
std::string_view BindKindName(BindKind kind);

// The MS_* flags a bind of `kind` is remounted with (MS_REMOUNT | MS_BIND
// is added by the caller).
unsigned long BindMountFlags(BindKind kind);

// A host path the jailed process needs. `path` is absolute and canonical
// (no symlinks, no "." or ".."); `what` names the flag in messages.
struct JailNeed {
  std::string path;
  BindKind kind = BindKind::kReadOnly;
  bool directory = false;
  std::string what;
  std::string named = {};  // the path the flag gave, when `path` is its folder (for messages)
};

// One bind mount: `path` on the host appears at `path` inside.
struct JailBind {
  std::string path;
  BindKind kind = BindKind::kReadOnly;
  bool directory = false;
  std::string what;  // the flags that asked for it, comma-separated

  bool operator==(const JailBind&) const = default;
};

struct MountPlan {
  std::string root;             // the jail directory (canonical)
  std::vector<JailBind> binds;  // in mount order: a folder before what lies beneath it
};

// The tmpfs mounted on DIR: it holds only the empty directories and files
// the binds are mounted on.
inline constexpr uint64_t kJailTmpfsBytes = 1ull << 20;
inline constexpr uint64_t kJailTmpfsInodes = 4096;

// The ids vmm runs as inside.
struct JailIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// "--uid"/"--gid" values: a decimal number 1..4294967294. 0 (root) is
// refused: the jail exists to leave root behind; 4294967295 is (uid_t)-1,
// which setresuid reads as "unchanged". kUsage naming `flag` otherwise.
[[nodiscard]] Result<uint32_t> ParseJailId(std::string_view text, std::string_view flag);

// The caller must be root (euid 0): kUsage naming --jail otherwise.
[[nodiscard]] Result<void> CheckJailCaller(uid_t euid);

// DIR (relative to the working directory if not absolute) must exist
// (kNoInput), be a directory other than "/", owned by root, writable by
// nobody else and empty (kConfig, naming --jail and what is wrong).
// Returns its canonical path.
[[nodiscard]] Result<std::string> CheckJailDir(const std::string& dir);

// The binds for `needs`, from nothing but the list (no file system access):
// one bind per path, the widest kind winning when several needs name it
// (device > read-write > read-only), sorted so that a folder is mounted
// before anything beneath it. Refused (kUsage, naming the need's flag): a
// path that is not absolute and canonical, a path inside `root` or `root`
// inside a path (the jail's tmpfs hides one from the other), "/" itself,
// and a path beneath /proc (the jail mounts its own).
[[nodiscard]] Result<MountPlan> PlanMounts(const std::string& root,
                                           std::span<const JailNeed> needs);

// What the supervisor does besides waiting.
struct Supervision {
  // Host paths of the sockets the child creates: removed after it ends if
  // still there, still sockets and owned by the jail's uid.
  std::vector<std::string> sockets;
  // The supervisor's own filter (ThreadKind::kSupervisor) unless kOff.
  SeccompMode seccomp = SeccompMode::kKill;
};

// Steps 2-5 above. Returns only in the jailed child, with privileges
// dropped; the supervisor exits with the child's status (128 + N when the
// child was killed by signal N). An error before the fork (the process
// has threads, unshare, fork) is returned in the caller, which is then
// still the only process and unchanged but for its pid namespace for
// children; an error after it is returned in the child, which ends with its
// status, and the supervisor passes that status on.
[[nodiscard]] Result<void> EnterJail(const MountPlan& plan, const JailIds& ids,
                                     const Supervision& supervision);

// Step 4 alone, for a process that is root: setgroups(0), every capability
// out of the bounding set, the ambient set cleared, setresgid(gid),
// setresuid(uid), the permitted, effective and inheritable sets emptied,
// no_new_privs; then checks that the capability sets are empty and that
// setuid(0) fails. kInternal naming the step that failed.
[[nodiscard]] Result<void> DropPrivileges(const JailIds& ids);

}  // namespace base::sandbox
