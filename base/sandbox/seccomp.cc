#include "base/sandbox/seccomp.h"

#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace base::sandbox {
namespace {

// --- The allowlists (docs/security.md, "seccomp", lists them) ---------------

// Every thread: what libc, libstdc++ and spdlog do on any path, and what the
// SIGSYS handler itself needs.
constexpr SyscallRule kCommon[] = {
    {"futex", "std::mutex, std::condition_variable, thread joins"},
    {"write", "logs on stderr (spdlog), the SIGSYS line, eventfd and irqfd signals"},
    {"writev", "stdio and spdlog may gather a line"},
    {"mmap", "malloc: large blocks and new arenas"},
    {"munmap", "malloc: freeing large blocks"},
    {"mremap", "malloc: growing large blocks (realloc)"},
    {"madvise", "malloc: returning freed pages (MADV_DONTNEED)"},
    {"mprotect", "malloc: growing a thread arena's heap"},
    {"brk", "malloc: the main arena"},
    {"clock_gettime", "clocks (when the vDSO falls back), logs' timestamps"},
    {"clock_nanosleep", "std::this_thread::sleep_for"},
    {"nanosleep", "sleeps in libc"},
    {"gettid", "spdlog's thread id, pthread_kill"},
    {"getpid", "pthread_kill, raise"},
    {"tgkill", "pthread_kill (the vCPU kick), raise, abort"},
    {"rt_sigprocmask", "pthread_sigmask, abort, signal handlers' masks"},
    {"rt_sigreturn", "returning from a signal handler (the kick, SIGINT/SIGTERM)"},
    {"sched_yield", "spin-then-block in libstdc++ and asio"},
    {"restart_syscall", "a call interrupted by a stop signal resumes"},
    {"fstat", "stdio sizes a stream's buffer at its first use"},
    {"newfstatat", "fstat as glibc issues it"},
    {"exit", "a thread ends"},
    {"exit_group", "the process ends (exit, _exit, the SIGSYS handler)"},
};

// KVM ioctls of the vCPU exit path (vmm/vcpu.cc, vmm/exit_handler.cc,
// vmm/guest_debug.cc, vmm/insn_assist.cc) and the legacy devices' interrupt.
constexpr IoctlRequest kVcpuIoctls[] = {
    {KVM_RUN, "KVM_RUN"},
    {KVM_GET_REGS, "KVM_GET_REGS"},
    {KVM_SET_REGS, "KVM_SET_REGS"},
    {KVM_GET_SREGS, "KVM_GET_SREGS"},
    {KVM_SET_SREGS, "KVM_SET_SREGS"},
    {KVM_GET_FPU, "KVM_GET_FPU"},
    {KVM_SET_FPU, "KVM_SET_FPU"},
    {KVM_TRANSLATE, "KVM_TRANSLATE"},
    {KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS"},
    {KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS"},
    {KVM_GET_DEVICE_ATTR, "KVM_GET_DEVICE_ATTR"},
    {KVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR"},
    {KVM_GET_TSC_KHZ, "KVM_GET_TSC_KHZ"},
    {KVM_IRQ_LINE, "KVM_IRQ_LINE"},
};

constexpr SyscallRule kVcpu[] = {
    {"ioctl",
     "KVM_RUN and the exit path's register, FPU, event and TSC ioctls; KVM_IRQ_LINE "
     "for the 16550 and i8042 interrupts raised on this thread",
     kVcpuIoctls},
    {"epoll_ctl",
     "asio::post to the device loop (console output to socket clients, virtio "
     "transport work) wakes its reactor with EPOLL_CTL_MOD"},
};

// asio's reactor, console input and sockets (vmm/console/console.cc).
constexpr IoctlRequest kDeviceLoopIoctls[] = {
    {FIONBIO, "FIONBIO"},
    {FIONREAD, "FIONREAD"},
    {TCGETS, "TCGETS"},
    {KVM_IRQ_LINE, "KVM_IRQ_LINE"},
};

constexpr SyscallRule kDeviceLoop[] = {
    {"ioctl",
     "FIONBIO (asio makes a descriptor non-blocking at its first operation), FIONREAD "
     "and TCGETS (console input), KVM_IRQ_LINE (serial input interrupt)",
     kDeviceLoopIoctls},
    {"epoll_wait", "asio's reactor"},
    {"epoll_pwait", "asio's reactor (as some libc versions issue it)"},
    {"epoll_ctl", "asio registers and removes descriptors"},
    {"timerfd_settime", "asio's timers (console retries, client limits)"},
    {"read", "ioeventfds, console input, console sockets, asio's eventfd"},
    {"readv", "asio's scatter reads"},
    {"recvfrom", "console socket clients (asio's receive)"},
    {"recvmsg", "console socket clients"},
    {"sendto", "console socket clients (asio's send)"},
    {"sendmsg", "console socket clients (asio's gathered send)"},
    {"accept", "a console socket client connects"},
    {"accept4", "a console socket client connects"},
    {"fcntl", "FD_CLOEXEC on accepted sockets, O_NONBLOCK checks"},
    {"shutdown", "closing a console client"},
    {"close", "a console client leaves"},
    {"poll", "console output waits for a writable descriptor"},
};

constexpr IoctlRequest kControlIoctls[] = {
    {FIONBIO, "FIONBIO"},
    {KVM_GET_CLOCK, "KVM_GET_CLOCK"},
    {KVM_SET_CLOCK, "KVM_SET_CLOCK"},
    {KVM_IRQ_LINE, "KVM_IRQ_LINE"},
};

constexpr SyscallRule kControl[] = {
    {"ioctl",
     "FIONBIO (asio), KVM_GET_CLOCK/KVM_SET_CLOCK (pause, resume), KVM_IRQ_LINE "
     "(Ctrl-Alt-Del through the i8042)",
     kControlIoctls},
    {"epoll_wait", "asio's reactor"},
    {"epoll_pwait", "asio's reactor (as some libc versions issue it)"},
    {"epoll_ctl", "asio registers and removes descriptors"},
    {"timerfd_settime", "--timeout and the API's per-request and idle timers"},
    {"read", "API requests, asio's signal pipe and eventfd"},
    {"readv", "asio's scatter reads"},
    {"recvfrom", "API requests (asio's receive)"},
    {"recvmsg", "API requests"},
    {"sendto", "API responses (asio's send)"},
    {"sendmsg", "API responses (asio's gathered send)"},
    {"accept", "an API client connects"},
    {"accept4", "an API client connects"},
    {"getsockopt", "SO_PEERCRED: the API's per-client-pid limit"},
    {"fcntl", "FD_CLOEXEC on accepted sockets"},
    {"shutdown", "closing an API connection"},
    {"close", "an API connection ends"},
};

constexpr SyscallRule kBlockWorker[] = {
    {"preadv", "guest reads, in pieces (devices/virtio/block/block.cc)"},
    {"pwritev", "guest writes, in pieces"},
    {"pread64", "guest reads (the backend's single-buffer path)"},
    {"pwrite64", "guest writes (the backend's single-buffer path)"},
    {"fdatasync", "VIRTIO_BLK_T_FLUSH"},
    {"fsync", "VIRTIO_BLK_T_FLUSH where fdatasync is not supported"},
    {"epoll_ctl", "a completion posted to the device loop wakes its reactor (EPOLL_CTL_MOD)"},
};

// The main thread after set-up waits for the end, then tears the VM down
// and prints the exit (vmm/vm.cc Run()); the stop watchdog it starts runs
// under this filter too.
constexpr IoctlRequest kMainIoctls[] = {
    {TCGETS, "TCGETS"},
    {TCSETS, "TCSETS"},
    {TCSETSW, "TCSETSW"},
    {TCSETSF, "TCSETSF"},
    {KVM_GET_REGS, "KVM_GET_REGS"},
    {KVM_GET_SREGS, "KVM_GET_SREGS"},
    {KVM_TRANSLATE, "KVM_TRANSLATE"},
};

constexpr SyscallRule kMain[] = {
    {"ioctl", "restoring the terminal (tcsetattr), the register dump after --timeout", kMainIoctls},
    {"close", "closing device, socket and KVM fds at the end"},
    {"epoll_ctl", "asio objects deregister when destroyed; posts wake a reactor"},
    {"fcntl", "the console restores stdin's flags at the end"},
    {"rt_sigaction", "asio's signal_set restores the default SIGINT/SIGTERM handlers"},
    {"unlink", "removing the API and console sockets"},
    {"unlinkat", "removing sockets (as libstdc++ issues it)"},
    {"openat", "/proc/self/status for the exit summary's memory figures"},
    {"read", "reading /proc/self/status"},
    {"lseek", "stdio on /proc files"},
    {"shutdown", "closing sockets at the end"},
    {"clone3", "the stop watchdog thread"},
    {"clone", "the stop watchdog thread (libc without clone3)"},
    {"set_robust_list", "the watchdog thread's start"},
    {"rseq", "the watchdog thread's start (glibc registers rseq)"},
    {"sigaltstack", "a thread's start and end"},
    {"timerfd_settime", "cancelling asio timers at teardown"},
    {"sendto", "flushing a console client at teardown"},
    {"wait4", "reaping vmm-vnc, the live view's process, at the end (vmm/vnc/view.cc)"},
};

// `vmm suite`: the runner, and everything a vmm child (or the test's
// stand-in) does before it loads its own filters: the children inherit
// this filter across posix_spawn/execve and stack theirs on top (the kernel
// ANDs them), so this list must hold all of vmm's start-up.
constexpr SyscallRule kSuite[] = {
    {"ioctl", "children open /dev/kvm and build the VM before their own filters (any request)"},
    {"execve", "posix_spawn runs vmm"},
    {"execveat", "posix_spawn variants"},
    {"clone", "posix_spawn, thread creation in children"},
    {"clone3", "posix_spawn, thread creation in children"},
    {"vfork", "posix_spawn"},
    {"wait4", "waitpid on a child"},
    {"waitid", "waiting on a child's pidfd"},
    {"pidfd_open", "the runner polls children's pidfds"},
    {"kill", "the watchdog kills a hung child's process group"},
    {"pipe2", "children's stdin, stdout, stderr"},
    {"poll", "the runner's loop"},
    {"ppoll", "poll as some libc versions issue it"},
    {"pselect6", "select in children"},
    {"read", "children's output, files"},
    {"readv", "files"},
    {"pread64", "files, disks"},
    {"pwrite64", "disks"},
    {"preadv", "disks"},
    {"pwritev", "disks"},
    {"fdatasync", "disks"},
    {"fsync", "reports, disks"},
    {"open", "files (children)"},
    {"openat", "case files, artifacts, reports"},
    {"close", "pipes, files"},
    {"close_range", "vmm closes inherited fds; posix_spawn's addclosefrom"},
    {"dup", "children"},
    {"dup2", "posix_spawn's file actions"},
    {"dup3", "posix_spawn's file actions"},
    {"fcntl", "close-on-exec, non-blocking pipes"},
    {"lseek", "files"},
    {"stat", "files"},
    {"lstat", "files"},
    {"statx", "std::filesystem"},
    {"access", "children's start-up"},
    {"faccessat", "children's start-up"},
    {"faccessat2", "children's start-up"},
    {"getdents64", "listing case folders, /proc/self/fd"},
    {"readlink", "/proc/self/exe"},
    {"readlinkat", "/proc/self/exe"},
    {"getcwd", "relative paths"},
    {"chdir", "children's start-up"},
    {"mkdir", "artifact folders"},
    {"mkdirat", "artifact folders"},
    {"rename", "reports written whole"},
    {"renameat", "reports written whole"},
    {"renameat2", "reports written whole"},
    {"unlink", "stale sockets, temporary files"},
    {"unlinkat", "stale sockets, temporary files, artifact folders"},
    {"rmdir", "artifact folders"},
    {"chmod", "sockets are 0600"},
    {"fchmod", "sockets are 0600"},
    {"umask", "children's socket creation"},
    {"ftruncate", "files"},
    {"flock", "disk locks in children"},
    {"socket", "children's API and console sockets"},
    {"socketpair", "children"},
    {"bind", "children's sockets"},
    {"listen", "children's sockets"},
    {"accept", "children's sockets"},
    {"accept4", "children's sockets"},
    {"connect", "children"},
    {"getsockopt", "children's API (SO_PEERCRED)"},
    {"setsockopt", "children's sockets"},
    {"getsockname", "children's sockets"},
    {"getpeername", "children's sockets"},
    {"sendto", "children's sockets"},
    {"recvfrom", "children's sockets"},
    {"sendmsg", "children's sockets"},
    {"recvmsg", "children's sockets"},
    {"shutdown", "children's sockets"},
    {"epoll_create1", "children's asio reactors"},
    {"epoll_ctl", "children's asio reactors"},
    {"epoll_wait", "children's asio reactors"},
    {"epoll_pwait", "children's asio reactors"},
    {"eventfd2", "children's ioeventfds, irqfds, asio"},
    {"timerfd_create", "children's asio timers"},
    {"timerfd_settime", "children's asio timers"},
    {"rt_sigaction", "SIGINT/SIGTERM handlers, posix_spawn's signal defaults"},
    {"sigaltstack", "thread start and end"},
    {"set_robust_list", "thread and process start"},
    {"rseq", "thread and process start"},
    {"set_tid_address", "process start"},
    {"arch_prctl", "process start (TLS)"},
    {"prctl", "children set no_new_privs and name threads"},
    {"seccomp", "children load their own filters"},
    {"landlock_create_ruleset", "children confine their file access"},
    {"landlock_add_rule", "children confine their file access"},
    {"landlock_restrict_self", "children confine their file access"},
    {"prlimit64", "children set RLIMIT_NOFILE and RLIMIT_AS"},
    {"getrlimit", "children read their limits"},
    {"setrlimit", "children set their limits"},
    {"getuid", "children's start-up"},
    {"geteuid", "children's start-up"},
    {"getgid", "children's start-up"},
    {"getegid", "children's start-up"},
    {"getppid", "children's start-up"},
    {"getpgrp", "children's start-up"},
    {"setpgid", "each child runs in its own process group (the watchdog kills the group)"},
    {"sched_getaffinity", "std::thread::hardware_concurrency (the default --jobs)"},
    {"sysinfo", "children's start-up"},
    {"uname", "children's start-up"},
    {"getrandom", "children's start-up (libc, Python)"},
    {"memfd_create", "children"},
};

// `vmm attach` after it connected and set the terminal up: copies bytes
// between the terminal and the socket (vmm/console/attach.cc).
constexpr IoctlRequest kAttachIoctls[] = {
    {TCGETS, "TCGETS"},
    {TCSETS, "TCSETS"},
    {TCSETSW, "TCSETSW"},
    {TCSETSF, "TCSETSF"},
};

constexpr SyscallRule kAttach[] = {
    {"ioctl", "restoring the terminal (tcsetattr), on every exit path", kAttachIoctls},
    {"poll", "waiting on the socket and stdin"},
    {"ppoll", "poll as some libc versions issue it"},
    {"read", "the socket and stdin"},
    {"sendto", "keystrokes to the socket (send with MSG_NOSIGNAL)"},
    {"shutdown", "stdin ended: half-close the socket"},
    {"close", "closing the socket"},
    {"rt_sigaction", "the terminal-restoring signal handlers re-raise with the default action"},
    {"kill", "re-raising a fatal signal after the terminal is restored"},
};

// vmm-vnc, the live view's process (vmm/vnc/main.cc), once it has mapped
// the framebuffer and set libvncserver up: its one thread accepts on the
// socket vmm bound, serves the clients (select, non-blocking reads and
// writes, encoders that only allocate) and sends keys to vmm.
constexpr SyscallRule kVnc[] = {
    {"poll", "waiting for a client or for vmm's end of the key socket to close"},
    {"ppoll", "poll as some libc versions issue it"},
    {"select", "libvncserver waits on its clients (rfbCheckFds, rfbPeekExactTimeout)"},
    {"pselect6", "select as glibc issues it"},
    {"accept4", "a client connects (close-on-exec, non-blocking)"},
    {"read", "client messages (libvncserver)"},
    {"recvfrom", "libvncserver peeks at a new client's first bytes (its WebSocket check)"},
    {"sendto", "a key to vmm (send)"},
    {"getpeername", "libvncserver names a new client"},
    {"setsockopt", "libvncserver sets TCP_NODELAY"},
    {"fcntl", "libvncserver makes a client non-blocking"},
    {"shutdown", "libvncserver closes a client"},
    {"close", "a client leaves, a refused client"},
    {"gettimeofday", "libvncserver's update timing (when the vDSO falls back)"},
};

// `--jail`'s supervisor (base/sandbox/jail.cc RunSupervisor): root, outside
// the jail, it only waits for vmm, passes signals on and removes the sockets
// vmm left behind.
constexpr SyscallRule kSupervisor[] = {
    {"wait4", "waitpid on the jailed vmm"},
    {"kill", "passing SIGTERM, SIGINT and SIGHUP on to the jailed vmm"},
    {"unlink", "removing the sockets a killed vmm left behind"},
    {"unlinkat", "removing leftover sockets (as some libc versions issue it)"},
};

std::span<const SyscallRule> KindRules(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kMain:
      return kMain;
    case ThreadKind::kVcpu:
      return kVcpu;
    case ThreadKind::kDeviceLoop:
      return kDeviceLoop;
    case ThreadKind::kControl:
      return kControl;
    case ThreadKind::kBlockWorker:
      return kBlockWorker;
    case ThreadKind::kSuite:
      return kSuite;
    case ThreadKind::kAttach:
      return kAttach;
    case ThreadKind::kVnc:
      return kVnc;
    case ThreadKind::kSupervisor:
      return kSupervisor;
  }
  return {};
}

// --- The syscall-name table, filled before any filter exists ---------------

constexpr long kNameTableSize = 512;
constexpr size_t kNameBytes = 32;
char g_names[kNameTableSize][kNameBytes];
std::once_flag g_names_once;

void FillNameTable() {
  for (long nr = 0; nr < kNameTableSize; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(nr));
    if (name == nullptr) continue;
    std::strncpy(g_names[nr], name, kNameBytes - 1);
    std::free(name);
  }
}

// --- Process-wide state ------------------------------------------------------

constexpr size_t kKinds = std::size(kAllThreadKinds);
std::atomic<SeccompMode> g_mode{SeccompMode::kOff};
std::array<scmp_filter_ctx, kKinds> g_filters{};
std::mutex g_filters_mutex;  // seccomp_load on a shared context is not thread-safe
thread_local ThreadKind t_kind = ThreadKind::kMain;

void OnSigsys(int, siginfo_t* info, void*) {
  char line[160];
  const size_t size = FormatViolation(line, t_kind, info->si_syscall);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(STDERR_FILENO, line + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::_exit(kExitSeccompViolation);
}

Result<scmp_filter_ctx> BuildFilter(ThreadKind kind, SeccompMode mode) {
  const uint32_t deny = mode == SeccompMode::kLog ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (ctx == nullptr) {
    return MakeError(ErrorKind::kInternal, "seccomp: seccomp_init failed");
  }
  // no_new_privs: set by seccomp_load (libseccomp's default), said here.
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0) {
    seccomp_release(ctx);
    return MakeError(ErrorKind::kInternal, "seccomp: cannot ask for no_new_privs");
  }
  for (const SyscallRule& rule : AllowList(kind)) {
    const std::string name(rule.name);
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      seccomp_release(ctx);
      return MakeError(ErrorKind::kInternal, "seccomp: {} filter: unknown system call '{}'",
                       ThreadKindName(kind), rule.name);
    }
    int rc = 0;
    if (rule.ioctls.empty()) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    } else {
      for (const IoctlRequest& ioctl : rule.ioctls) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctl.request));
        if (rc != 0) break;
      }
    }
    if (rc != 0) {
      seccomp_release(ctx);
      return std::unexpected(Error(
          ErrorKind::kInternal,
          fmt::format("seccomp: {} filter: rule for '{}' refused", ThreadKindName(kind), rule.name),
          -rc));
    }
  }
  return ctx;
}

// Appends `text` to out[at..]; returns the new length (truncating).
size_t Append(std::span<char> out, size_t at, std::string_view text) {
  for (char c : text) {
    if (at + 1 >= out.size()) break;
    out[at++] = c;
  }
  return at;
}

size_t AppendNumber(std::span<char> out, size_t at, long value) {
  char digits[24];
  size_t n = 0;
  const bool negative = value < 0;
  unsigned long v =
      negative ? 0ul - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < sizeof(digits));
  if (negative) at = Append(out, at, "-");
  while (n > 0) at = Append(out, at, std::string_view(&digits[--n], 1));
  return at;
}

}  // namespace

Result<SeccompMode> ParseSeccompMode(std::string_view text, std::string_view what) {
  if (text == "kill") return SeccompMode::kKill;
  if (text == "log") return SeccompMode::kLog;
  if (text == "off") return SeccompMode::kOff;
  return MakeError(ErrorKind::kUsage, "{}: '{}' is not a seccomp mode (kill, log, off)", what,
                   text);
}

std::string_view SeccompModeName(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::kKill:
      return "kill";
    case SeccompMode::kLog:
      return "log";
    case SeccompMode::kOff:
      return "off";
  }
  return "?";
}

std::string_view ThreadKindName(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kMain:
      return "main";
    case ThreadKind::kVcpu:
      return "vcpu";
    case ThreadKind::kDeviceLoop:
      return "device-loop";
    case ThreadKind::kControl:
      return "control";
    case ThreadKind::kBlockWorker:
      return "block-worker";
    case ThreadKind::kSuite:
      return "suite";
    case ThreadKind::kAttach:
      return "attach";
    case ThreadKind::kVnc:
      return "vnc";
    case ThreadKind::kSupervisor:
      return "supervisor";
  }
  return "?";
}

std::vector<SyscallRule> AllowList(ThreadKind kind) {
  std::vector<SyscallRule> rules(std::begin(kCommon), std::end(kCommon));
  for (const SyscallRule& rule : KindRules(kind)) rules.push_back(rule);
  return rules;
}

const char* SyscallName(long nr) {
  if (nr < 0 || nr >= kNameTableSize || g_names[nr][0] == '\0') return nullptr;
  return g_names[nr];
}

size_t FormatViolation(std::span<char> out, ThreadKind kind, long nr) {
  if (out.empty()) return 0;
  size_t at = Append(out, 0, "vmm: seccomp: the ");
  at = Append(out, at, ThreadKindName(kind));
  at = Append(out, at, " thread made a forbidden system call ");
  at = AppendNumber(out, at, nr);
  at = Append(out, at, " (");
  const char* name = SyscallName(nr);
  at = Append(out, at, name != nullptr ? std::string_view(name) : std::string_view("?"));
  at = Append(out, at, "); exiting with status ");
  at = AppendNumber(out, at, kExitSeccompViolation);
  at = Append(out, at, "\n");
  out[at] = '\0';
  return at;
}

Result<void> ConfigureSeccomp(SeccompMode mode) {
  std::call_once(g_names_once, FillNameTable);
  std::lock_guard lock(g_filters_mutex);
  for (auto& ctx : g_filters) {
    if (ctx != nullptr) seccomp_release(ctx);
    ctx = nullptr;
  }
  g_mode = mode;
  if (mode == SeccompMode::kOff) return {};
  for (size_t i = 0; i < kKinds; ++i) {
    g_filters[i] = TRY(BuildFilter(kAllThreadKinds[i], mode));
  }
  if (mode == SeccompMode::kKill) {
    struct sigaction action {};
    action.sa_sigaction = OnSigsys;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, nullptr) != 0) {
      return MakeErrnoError(ErrorKind::kInternal, "seccomp: installing the SIGSYS handler");
    }
  }
  return {};
}

SeccompMode ConfiguredSeccompMode() { return g_mode.load(); }

Result<void> EnterThread(ThreadKind kind) {
  t_kind = kind;
  if (g_mode.load() != SeccompMode::kOff) {
    std::lock_guard lock(g_filters_mutex);
    const auto index = static_cast<size_t>(kind);
    if (g_filters[index] == nullptr) {
      return MakeError(ErrorKind::kInternal, "seccomp: no {} filter (ConfigureSeccomp not called)",
                       ThreadKindName(kind));
    }
    // A thread's signal mask may block SIGSYS; a trap must reach the handler.
    sigset_t sigsys;
    sigemptyset(&sigsys);
    sigaddset(&sigsys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sigsys, nullptr);
    if (int rc = seccomp_load(g_filters[index]); rc != 0) {
      return std::unexpected(
          Error(ErrorKind::kInternal,
                fmt::format("seccomp: loading the {} filter", ThreadKindName(kind)), -rc));
    }
  }
#ifdef VMM_SECCOMP_TEST_HOOK
  // Test-only (docs/security.md, "Testing the filters"): nothing but a call
  // the filters forbid, which ends vmm in kill mode.
  if (const char* violate = std::getenv("VMM_TEST_SECCOMP_VIOLATE");
      violate != nullptr && ThreadKindName(kind) == violate) {
    (void)::syscall(SYS_getpriority, PRIO_PROCESS, 0);
  }
#endif
  return {};
}

void EnterThreadOrDie(ThreadKind kind) {
  if (auto entered = EnterThread(kind); !entered) {
    spdlog::error("{}", entered.error().ToString());
    ::_exit(static_cast<int>(ErrorKind::kInternal));
  }
}

}  // namespace base::sandbox
