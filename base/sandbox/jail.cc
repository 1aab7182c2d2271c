#include "base/sandbox/jail.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

namespace base::sandbox {
namespace {

constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP};

// `path` is `dir` or lies beneath it (both canonical).
bool IsWithin(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

bool IsCanonicalAbsolute(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  if (path.find("//") != std::string::npos) return false;
  return std::filesystem::path(path).lexically_normal().string() == path;
}

// The number after "Threads:" in /proc/self/status; 0 if unknown.
long ThreadCount() {
  FILE* status = std::fopen("/proc/self/status", "re");
  if (status == nullptr) return 0;
  char line[256];
  long threads = 0;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::strncmp(line, "Threads:", 8) == 0) {
      threads = std::strtol(line + 8, nullptr, 10);
      break;
    }
  }
  std::fclose(status);
  return threads;
}

// --- The supervisor ---------------------------------------------------------

volatile sig_atomic_t g_child = 0;

// A signal another process sent (kill, systemd, a shell's `kill`) goes on to
// the child; one the terminal generated (si_code SI_KERNEL) reached the
// child too, as it is in the same process group, and is not sent twice.
void ForwardSignal(int signo, siginfo_t* info, void*) {
  if (g_child > 0 && info != nullptr && info->si_code <= 0) {
    ::kill(static_cast<pid_t>(g_child), signo);
  }
}

// Until vmm installs its own handlers: pid 1 of a pid namespace ignores
// every signal it has no handler for (but SIGKILL and SIGSTOP), so without
// this a forwarded SIGTERM during the set-up would be lost. Ends as the
// default action would, with the shell's status for a signal.
void ExitOnSignal(int signo) { ::_exit(128 + signo); }

[[noreturn]] void RunSupervisor(pid_t child, const JailIds& ids, const Supervision& supervision,
                                const sigset_t& old_mask) {
  // The write end of the life line stays open (never written) until the
  // supervisor ends; the child sees its end as EOF (ParentIsGone).
  g_child = child;
  for (int signo : kForwardedSignals) {
    struct sigaction action {};
    action.sa_sigaction = ForwardSignal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, nullptr);
  }
  if (supervision.seccomp != SeccompMode::kOff) {
    // spdlog makes its default logger at the first use, asking isatty
    // (an ioctl): before the filter, not under it.
    (void)spdlog::default_logger_raw();
    auto configured = ConfigureSeccomp(supervision.seccomp);
    auto entered = configured ? EnterThread(ThreadKind::kSupervisor) : configured;
    if (!entered) {
      spdlog::error("--jail: the supervisor's filter: {}; stopping vmm",
                    entered.error().ToString());
      ::kill(child, SIGKILL);
      while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
      }
      std::fflush(nullptr);
      ::_exit(static_cast<int>(ErrorKind::kInternal));
    }
  }
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      spdlog::error("--jail: waiting for vmm (pid {}): {}", child, std::strerror(errno));
      std::fflush(nullptr);
      ::_exit(static_cast<int>(ErrorKind::kInternal));
    }
  }
  // vmm removes its sockets as it ends; after a SIGKILL or a crash they stay.
  // Only a socket the jailed uid made is removed, never something else that
  // appeared at the path since.
  for (const std::string& path : supervision.sockets) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == ids.uid) {
      if (::unlink(path.c_str()) == 0) spdlog::debug("--jail: removed the leftover {}", path);
    }
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  spdlog::debug("--jail: vmm (pid {} outside the jail) ended with status {}", child, code);
  std::fflush(nullptr);
  ::_exit(code);
}

// --- The child: namespaces, mounts, pivot -----------------------------------

Result<void> Mount(const char* source, const std::string& target, const char* type,
                   unsigned long flags, const char* data, std::string_view step) {
  if (::mount(source, target.c_str(), type, flags, data) != 0) {
    return MakeErrnoError(errno == ENOENT ? ErrorKind::kNoInput : ErrorKind::kInternal,
                          "--jail: {} ({})", step, target);
  }
  return {};
}

// Creates what is missing of root + path (folders, and the last component
// as a folder or an empty file), only ever on the jail's tmpfs: a missing
// component beneath a bound host folder would be made on the host, which is
// refused (the plan never needs it: what lies beneath a bound folder exists).
Result<void> MakeMountPoint(const std::string& root, const std::string& path, bool directory,
                            dev_t tmpfs_dev) {
  std::string at = root;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const bool last = end == path.size();
    const std::string parent = at;
    at += path.substr(start - 1, end - start + 1);
    start = end + 1;
    struct stat st {};
    if (::lstat(at.c_str(), &st) == 0) continue;
    struct stat parent_st {};
    if (::stat(parent.c_str(), &parent_st) != 0 || parent_st.st_dev != tmpfs_dev) {
      return MakeError(ErrorKind::kInternal,
                       "--jail: {} is missing beneath a bound host folder; not creating it there",
                       at.substr(root.size()));
    }
    if (last && !directory) {
      const int fd = ::open(at.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return MakeErrnoError(ErrorKind::kInternal, "--jail: creating {}", at);
      ::close(fd);
    } else if (::mkdir(at.c_str(), 0755) != 0) {
      return MakeErrnoError(ErrorKind::kInternal, "--jail: creating {}", at);
    }
  }
  return {};
}

Result<void> BuildJail(const MountPlan& plan) {
  if (::unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
    return MakeErrnoError(ErrorKind::kInternal,
                          "--jail: unshare(mount, net, IPC and UTS namespaces)");
  }
  // Nothing mounted from here on reaches the host's namespace.
  TRY(Mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr, "making every mount private"));
  const std::string options =
      fmt::format("size={},nr_inodes={},mode=0755", kJailTmpfsBytes, kJailTmpfsInodes);
  TRY(Mount("vmm-jail", plan.root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str(),
            "mounting the jail's tmpfs"));
  struct stat root_st {};
  if (::stat(plan.root.c_str(), &root_st) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: {}", plan.root);
  }
  for (const JailBind& bind : plan.binds) {
    const std::string target = plan.root + bind.path;
    TRY(MakeMountPoint(plan.root, bind.path, bind.directory, root_st.st_dev));
    TRY(Mount(bind.path.c_str(), target, nullptr, MS_BIND, nullptr,
              fmt::format("binding {} for {}", bind.path, bind.what)));
    TRY(Mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | BindMountFlags(bind.kind), nullptr,
              fmt::format("remounting {} {}", bind.path, BindKindName(bind.kind))));
  }
  TRY(MakeMountPoint(plan.root, "/proc", true, root_st.st_dev));
  // A /proc of the new pid namespace: vmm reads /proc/self/status.
  TRY(Mount("proc", plan.root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
            nullptr, "mounting /proc"));
  if (::chdir(plan.root.c_str()) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: chdir {}", plan.root);
  }
  // pivot_root(".", "."): the old root ends up on top of the new one, and
  // the detach below takes it away (pivot_root(2), NOTES).
  if (::syscall(SYS_pivot_root, ".", ".") != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: pivot_root into {}", plan.root);
  }
  if (::umount2(".", MNT_DETACH) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: detaching the old root");
  }
  if (::chdir("/") != 0) return MakeErrnoError(ErrorKind::kInternal, "--jail: chdir /");
  TRY(Mount(nullptr, "/", nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
            "remounting the jail's root read-only"));
  return {};
}

// The supervisor is gone (its end of `life_line` is closed): the child
// must not run on unsupervised. PR_SET_PDEATHSIG covers a death after the
// prctl; this covers one before it.
bool ParentIsGone(int life_line) {
  pollfd fd{life_line, POLLIN, 0};
  return ::poll(&fd, 1, 0) > 0 && (fd.revents & (POLLHUP | POLLIN)) != 0;
}

Result<void> ReadCapabilities(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: capget");
  }
  return {};
}

}  // namespace

std::string_view BindKindName(BindKind kind) {
  switch (kind) {
    case BindKind::kReadOnly:
      return "read-only";
    case BindKind::kReadWrite:
      return "read-write";
    case BindKind::kDevice:
      return "device";
  }
  return "?";
}

unsigned long BindMountFlags(BindKind kind) {
  switch (kind) {
    case BindKind::kReadOnly:
      return MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    case BindKind::kReadWrite:
      return MS_NOSUID | MS_NODEV | MS_NOEXEC;
    case BindKind::kDevice:
      return MS_NOSUID | MS_NOEXEC;
  }
  return MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
}

Result<uint32_t> ParseJailId(std::string_view text, std::string_view flag) {
  uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 10;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || value >= 0xffffffffull) {
    return MakeError(ErrorKind::kUsage,
                     "{} '{}': expected a number 1..4294967294 (names are not "
                     "looked up)",
                     flag, text);
  }
  if (value == 0) {
    return MakeError(ErrorKind::kUsage,
                     "{} 0: the jail exists to leave root behind; give an unprivileged id (e.g. "
                     "65534, nobody) that owns nothing vmm must not touch",
                     flag);
  }
  return static_cast<uint32_t>(value);
}

Result<void> CheckJailCaller(uid_t euid) {
  if (euid != 0) {
    return MakeError(ErrorKind::kUsage,
                     "--jail: building the jail needs root (vmm runs as uid {}); run vmm --jail as "
                     "root, or run it unjailed under systemd-run or bubblewrap (docs/security.md, "
                     "\"Jail\")",
                     euid);
  }
  return {};
}

Result<std::string> CheckJailDir(const std::string& dir) {
  if (dir.empty()) return MakeError(ErrorKind::kUsage, "--jail: empty directory name");
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    return MakeErrnoError(ErrorKind::kNoInput, "--jail {}", dir);
  }
  const std::string root = resolved;
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return MakeErrnoError(ErrorKind::kNoInput, "--jail {}", dir);
  if (!S_ISDIR(st.st_mode)) {
    return MakeError(ErrorKind::kConfig, "--jail {}: not a directory", dir);
  }
  if (root == "/") {
    return MakeError(ErrorKind::kConfig,
                     "--jail {}: the jail mounts over its directory; give an empty one of its own, "
                     "not /",
                     dir);
  }
  if (st.st_uid != 0) {
    return MakeError(ErrorKind::kConfig,
                     "--jail {}: owned by uid {}, not root (whoever owns it could swap it for "
                     "something else while the jail is built)",
                     dir, st.st_uid);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return MakeError(ErrorKind::kConfig, "--jail {}: writable by group or others (mode {:o})", dir,
                     st.st_mode & 07777);
  }
  DIR* listing = ::opendir(root.c_str());
  if (listing == nullptr) return MakeErrnoError(ErrorKind::kNoInput, "--jail {}", dir);
  std::string found;
  while (const dirent* entry = ::readdir(listing)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
      found = entry->d_name;
      break;
    }
  }
  ::closedir(listing);
  if (!found.empty()) {
    return MakeError(ErrorKind::kConfig,
                     "--jail {}: not empty (it holds '{}'); the jail mounts a tmpfs over it, so "
                     "give it an empty directory of its own",
                     dir, found);
  }
  return root;
}

Result<MountPlan> PlanMounts(const std::string& root, std::span<const JailNeed> needs) {
  if (!IsCanonicalAbsolute(root) || root == "/") {
    return MakeError(ErrorKind::kUsage, "--jail {}: not a canonical absolute directory", root);
  }
  // Ordered by path: a folder is a prefix of what lies beneath it, so it
  // sorts (and is mounted) first.
  std::map<std::string, JailBind> binds;
  for (const JailNeed& need : needs) {
    if (!IsCanonicalAbsolute(need.path)) {
      return MakeError(ErrorKind::kUsage, "{} {}: not a canonical absolute path", need.what,
                       need.path);
    }
    if (need.path == "/") {
      return MakeError(ErrorKind::kUsage,
                       "{}: binding / would pass the whole host file system into the jail; put "
                       "its file in a folder of its own",
                       need.what);
    }
    if (IsWithin(need.path, root)) {
      return MakeError(ErrorKind::kUsage,
                       "{} {} lies inside --jail {}: the jail mounts its own tmpfs there, so the "
                       "host and vmm would see different files; put it outside",
                       need.what, need.named.empty() ? need.path : need.named, root);
    }
    if (IsWithin(need.path, "/proc")) {
      return MakeError(ErrorKind::kUsage,
                       "{} {}: the jail mounts a /proc of its own; a path beneath /proc cannot be "
                       "passed in",
                       need.what, need.path);
    }
    auto [it, inserted] =
        binds.try_emplace(need.path, JailBind{need.path, need.kind, need.directory, need.what});
    if (!inserted) {
      JailBind& bind = it->second;
      bind.kind = std::max(bind.kind, need.kind);
      if (bind.what.find(need.what) == std::string::npos) bind.what += ", " + need.what;
    }
  }
  MountPlan plan;
  plan.root = root;
  for (auto& [path, bind] : binds) plan.binds.push_back(std::move(bind));
  return plan;
}

Result<void> DropPrivileges(const JailIds& ids) {
  if (::setgroups(0, nullptr) != 0)
    return MakeErrnoError(ErrorKind::kInternal, "--jail: setgroups");
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // beyond the kernel's last capability
      return MakeErrnoError(ErrorKind::kInternal,
                            "--jail: dropping capability {} from the bounding set", cap);
    }
  }
  // Linux >= 4.3; EINVAL before it, when there is no ambient set to clear.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: clearing the ambient capabilities");
  }
  if (::setresgid(ids.gid, ids.gid, ids.gid) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: setresgid({})", ids.gid);
  }
  if (::setresuid(ids.uid, ids.uid, ids.uid) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: setresuid({})", ids.uid);
  }
  // The uid change from 0 has emptied the permitted and effective sets;
  // the inheritable set is emptied here too, explicitly.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[2] = {};
  if (::syscall(SYS_capset, &header, none) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: capset (dropping every capability)");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return MakeErrnoError(ErrorKind::kInternal, "--jail: no_new_privs");
  }
  // Check, rather than trust, the result.
  __user_cap_data_struct left[2] = {};
  TRY(ReadCapabilities(left));
  for (const auto& set : left) {
    if (set.effective != 0 || set.permitted != 0 || set.inheritable != 0) {
      return MakeError(ErrorKind::kInternal, "--jail: capabilities are left after the drop");
    }
  }
  if (::prctl(PR_CAPBSET_READ, 0, 0, 0, 0) != 0) {
    return MakeError(ErrorKind::kInternal, "--jail: the bounding set is not empty after the drop");
  }
  if (::setresuid(0, 0, 0) == 0 || ::getuid() != ids.uid || ::geteuid() != ids.uid ||
      ::getgid() != ids.gid || ::getegid() != ids.gid) {
    return MakeError(ErrorKind::kInternal, "--jail: the uid/gid drop did not hold");
  }
  return {};
}

Result<void> EnterJail(const MountPlan& plan, const JailIds& ids, const Supervision& supervision) {
  // fork copies only the calling thread; unshare(CLONE_NEWNS) refuses a
  // multithreaded caller anyway. The jail comes before every thread.
  if (const long threads = ThreadCount(); threads > 1) {  // 0: unknown (no /proc)
    return MakeError(ErrorKind::kInternal,
                     "--jail: vmm has {} threads; the jail must be entered before any starts",
                     threads);
  }
  // Held back until each side has its handlers (they stay pending).
  sigset_t forwarded, old_mask;
  sigemptyset(&forwarded);
  for (int signo : kForwardedSignals) sigaddset(&forwarded, signo);
  sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
  auto restore = [&] { sigprocmask(SIG_SETMASK, &old_mask, nullptr); };

  if (::unshare(CLONE_NEWPID) != 0) {
    auto error = MakeErrnoError(ErrorKind::kInternal, "--jail: unshare(CLONE_NEWPID)");
    restore();
    return error;
  }
  int life_line[2];
  if (::pipe2(life_line, O_CLOEXEC) != 0) {
    auto error = MakeErrnoError(ErrorKind::kInternal, "--jail: pipe2");
    restore();
    return error;
  }
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t child = ::fork();
  if (child < 0) {
    auto error = MakeErrnoError(ErrorKind::kInternal, "--jail: fork");
    ::close(life_line[0]);
    ::close(life_line[1]);
    restore();
    return error;
  }
  if (child > 0) {
    ::close(life_line[0]);
    RunSupervisor(child, ids, supervision, old_mask);
  }
  ::close(life_line[1]);

  // The child: pid 1 of the new pid namespace.
  for (int signo : kForwardedSignals) {
    struct sigaction action {};
    action.sa_handler = ExitOnSignal;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, nullptr);
  }
  restore();
  // If the supervisor dies (SIGKILL), so does vmm. The setting is cleared by
  // a uid change, so it is made again after the drop.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (ParentIsGone(life_line[0])) ::_exit(static_cast<int>(ErrorKind::kInternal));
  auto built = BuildJail(plan);
  if (built) built = DropPrivileges(ids);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (ParentIsGone(life_line[0])) ::_exit(static_cast<int>(ErrorKind::kInternal));
  ::close(life_line[0]);
  return built;
}

}  // namespace base::sandbox
