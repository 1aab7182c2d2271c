// base/sandbox: seccomp allowlists and filters, the violation line,
// Landlock and resource limits. Everything that loads a filter or restricts
// the process runs in a forked child, so the test process stays unconfined.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "base/sandbox/landlock.h"
#include "base/sandbox/limits.h"
#include "base/sandbox/seccomp.h"
#include "vmm/confine.h"

namespace {

using base::sandbox::SeccompMode;
using base::sandbox::ThreadKind;

struct ChildEnd {
  int status = -1;  // exit status, or -signal
  std::string err;  // what it wrote on stderr
};

// Runs `body` in a forked child whose stderr is captured; the child ends
// with body's return value.
ChildEnd RunInChild(const std::function<int()>& body) {
  int pipe_fds[2];
  EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    _exit(body());
  }
  close(pipe_fds[1]);
  ChildEnd end;
  char buf[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) end.err.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  end.status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return end;
}

TEST(Seccomp, ModesParseAndBadOnesAreUsageErrors) {
  EXPECT_EQ(*base::sandbox::ParseSeccompMode("kill", "--seccomp"), SeccompMode::kKill);
  EXPECT_EQ(*base::sandbox::ParseSeccompMode("log", "--seccomp"), SeccompMode::kLog);
  EXPECT_EQ(*base::sandbox::ParseSeccompMode("off", "--seccomp"), SeccompMode::kOff);
  auto bad = base::sandbox::ParseSeccompMode("foo", "--seccomp");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_status(), 64);
  EXPECT_NE(bad.error().message().find("'foo'"), std::string::npos);
}

TEST(Seccomp, EveryRuleHasAReasonAndNoCallIsListedTwice) {
  for (ThreadKind kind : base::sandbox::kAllThreadKinds) {
    std::set<std::string_view> seen;
    for (const auto& rule : base::sandbox::AllowList(kind)) {
      EXPECT_FALSE(rule.reason.empty()) << rule.name;
      EXPECT_TRUE(seen.insert(rule.name).second)
          << base::sandbox::ThreadKindName(kind) << " lists " << rule.name << " twice";
    }
  }
}

TEST(Seccomp, NoVmmThreadMayOpenFilesSpawnOrTrace) {
  const std::set<std::string_view> never = {
      "execve", "ptrace", "socket", "connect", "mount", "getpriority", "process_vm_writev", "bpf"};
  for (ThreadKind kind :
       {ThreadKind::kVcpu, ThreadKind::kDeviceLoop, ThreadKind::kControl, ThreadKind::kBlockWorker,
        ThreadKind::kMain, ThreadKind::kAttach, ThreadKind::kVnc}) {
    for (const auto& rule : base::sandbox::AllowList(kind)) {
      EXPECT_FALSE(never.contains(rule.name))
          << base::sandbox::ThreadKindName(kind) << " allows " << rule.name;
      if (kind != ThreadKind::kMain) {
        EXPECT_NE(rule.name, "openat");
      }
    }
  }
}

TEST(Seccomp, TheLiveViewProcessReachesNoFileAndNoDevice) {
  // vmm-vnc parses what network clients send: no open, no ioctl, no new
  // socket of its own (docs/security.md, "vmm-vnc").
  for (const auto& rule : base::sandbox::AllowList(ThreadKind::kVnc)) {
    for (std::string_view forbidden :
         {"open", "openat", "openat2", "ioctl", "socket", "bind", "listen", "connect", "execve"}) {
      EXPECT_NE(rule.name, forbidden);
    }
  }
}

TEST(Seccomp, EveryFilterBuilds) {
  // Unknown names and refused rules are errors of ConfigureSeccomp.
  auto end = RunInChild([] {
    auto kill = base::sandbox::ConfigureSeccomp(SeccompMode::kKill);
    if (!kill) return std::fprintf(stderr, "%s\n", kill.error().ToString().c_str()), 1;
    auto log = base::sandbox::ConfigureSeccomp(SeccompMode::kLog);
    if (!log) return std::fprintf(stderr, "%s\n", log.error().ToString().c_str()), 1;
    return 0;
  });
  EXPECT_EQ(end.status, 0) << end.err;
}

TEST(Seccomp, SyscallNamesComeFromTheTable) {
  ASSERT_TRUE(base::sandbox::ConfigureSeccomp(SeccompMode::kOff));
  EXPECT_STREQ(base::sandbox::SyscallName(SYS_read), "read");
  EXPECT_STREQ(base::sandbox::SyscallName(SYS_socket), "socket");
  EXPECT_STREQ(base::sandbox::SyscallName(SYS_getpriority), "getpriority");
  EXPECT_EQ(base::sandbox::SyscallName(-1), nullptr);
  EXPECT_EQ(base::sandbox::SyscallName(100000), nullptr);
}

TEST(Seccomp, ViolationLineNamesTheThreadAndTheCall) {
  ASSERT_TRUE(base::sandbox::ConfigureSeccomp(SeccompMode::kOff));
  char line[160];
  const size_t size = base::sandbox::FormatViolation(line, ThreadKind::kVcpu, SYS_socket);
  EXPECT_EQ(std::string(line, size),
            "vmm: seccomp: the vcpu thread made a forbidden system call 41 (socket); exiting "
            "with status 83\n");
  const size_t unknown = base::sandbox::FormatViolation(line, ThreadKind::kBlockWorker, 9999);
  EXPECT_EQ(std::string(line, unknown),
            "vmm: seccomp: the block-worker thread made a forbidden system call 9999 (?); "
            "exiting with status 83\n");
}

TEST(Seccomp, ViolationLineIsTruncatedNotOverrun) {
  char line[16];
  std::memset(line, 'x', sizeof(line));
  const size_t size = base::sandbox::FormatViolation(std::span(line, 10), ThreadKind::kMain, 1);
  EXPECT_EQ(size, 9u);
  EXPECT_EQ(line[9], '\0');
  EXPECT_EQ(line[10], 'x');
}

TEST(Seccomp, ForbiddenCallEndsTheProcessWith83AndOneLine) {
  auto end = RunInChild([] {
    if (!base::sandbox::ConfigureSeccomp(SeccompMode::kKill)) return 1;
    if (!base::sandbox::EnterThread(ThreadKind::kBlockWorker)) return 2;
    void* block = std::malloc(1 << 20);  // allowed: malloc, write
    std::free(block);
    (void)::write(STDERR_FILENO, "still here\n", 11);
    (void)::socket(AF_INET, SOCK_STREAM, 0);  // forbidden
    return 3;
  });
  EXPECT_EQ(end.status, 83);
  EXPECT_EQ(end.err,
            "still here\nvmm: seccomp: the block-worker thread made a forbidden system call 41 "
            "(socket); exiting with status 83\n");
}

TEST(Seccomp, IoctlIsCheckedByRequest) {
  auto end = RunInChild([] {
    if (!base::sandbox::ConfigureSeccomp(SeccompMode::kKill)) return 1;
    if (!base::sandbox::EnterThread(ThreadKind::kVcpu)) return 2;
    int one = 1;
    (void)::ioctl(STDERR_FILENO, FIONBIO, &one);  // not a vCPU request
    return 3;
  });
  EXPECT_EQ(end.status, 83);
  EXPECT_NE(end.err.find("the vcpu thread made a forbidden system call 16 (ioctl)"),
            std::string::npos)
      << end.err;
}

TEST(Seccomp, LogModeLetsTheCallRun) {
  auto end = RunInChild([] {
    if (!base::sandbox::ConfigureSeccomp(SeccompMode::kLog)) return 1;
    if (!base::sandbox::EnterThread(ThreadKind::kBlockWorker)) return 2;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 4;
  });
  EXPECT_EQ(end.status, 0) << end.err;
}

TEST(Seccomp, FiltersStackWhenAThreadKindChanges) {
  // As a vmm child of the suite runner: the suite list allows prctl and
  // seccomp (to load a second filter) and socket; the block worker's, loaded
  // on top, does not allow socket, and the two are ANDed.
  auto end = RunInChild([] {
    if (!base::sandbox::ConfigureSeccomp(SeccompMode::kKill)) return 1;
    if (!base::sandbox::EnterThread(ThreadKind::kSuite)) return 2;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 4;
    if (!base::sandbox::EnterThread(ThreadKind::kBlockWorker)) return 5;
    (void)::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return 3;
  });
  EXPECT_EQ(end.status, 83);
  EXPECT_NE(end.err.find("the block-worker thread made a forbidden system call 41 (socket)"),
            std::string::npos)
      << end.err;
}

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/sandbox-test-XXXXXX";
    path_ = mkdtemp(name);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  std::string Write(const std::string& name) const {
    const std::string path = Path(name);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    (void)::write(fd, "x", 1);
    ::close(fd);
    return path;
  }

 private:
  std::string path_;
};

TEST(Landlock, OnlyTheListedFilesOpen) {
  if (base::sandbox::LandlockAbi() == 0) GTEST_SKIP() << "no Landlock on this kernel";
  TempDir dir;
  const std::string allowed = dir.Write("allowed.img");
  const std::string readonly = dir.Write("readonly.img");
  const std::string other = dir.Write("other.img");
  auto end = RunInChild([&] {
    const base::sandbox::FsRule rules[] = {
        {allowed, base::sandbox::FsAccess::kReadWriteFile},
        {readonly, base::sandbox::FsAccess::kReadFile},
    };
    auto outcome = base::sandbox::RestrictFilesystem(rules);
    if (!outcome || outcome->abi == 0) return 1;
    if (::open(allowed.c_str(), O_RDWR | O_CLOEXEC) < 0) return 2;
    if (::open(readonly.c_str(), O_RDONLY | O_CLOEXEC) < 0) return 3;
    if (::open(readonly.c_str(), O_RDWR | O_CLOEXEC) >= 0 || errno != EACCES) return 4;
    if (::open(other.c_str(), O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES) return 5;
    if (::open("/etc/passwd", O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES) return 6;
    if (::unlink(other.c_str()) == 0 || errno != EACCES) return 7;
    return 0;
  });
  EXPECT_EQ(end.status, 0) << end.err;
}

TEST(Landlock, TheApiSocketIsMadeAndRemovedUnderVmmsRules) {
  if (base::sandbox::LandlockAbi() == 0) GTEST_SKIP() << "no Landlock on this kernel";
  // Vm::Run binds the API socket after ConfineAfterBuild: its folder's rule
  // must allow making a socket, not only removing one.
  TempDir dir;
  vmm::VmConfig config;
  config.kernel = dir.Write("kernel.elf");
  config.api_sock = dir.Path("api.sock");
  auto end = RunInChild([&] {
    const auto rules = vmm::LandlockRules(config);
    auto outcome = base::sandbox::RestrictFilesystem(rules);
    if (!outcome || outcome->abi == 0) return 1;
    const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", config.api_sock.c_str());
    if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return std::fprintf(stderr, "bind: %s\n", std::strerror(errno)), 2;
    }
    if (::unlink(config.api_sock.c_str()) != 0) return 3;
    if (::open(dir.Path("new-file").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0) return 4;
    return 0;
  });
  EXPECT_EQ(end.status, 0) << end.err;
}

TEST(Landlock, AMissingPathIsNoInput) {
  if (base::sandbox::LandlockAbi() == 0) GTEST_SKIP() << "no Landlock on this kernel";
  auto end = RunInChild([] {
    const base::sandbox::FsRule rules[] = {{"/nonexistent/x", base::sandbox::FsAccess::kReadFile}};
    auto outcome = base::sandbox::RestrictFilesystem(rules);
    return outcome ? 0 : outcome.error().exit_status();
  });
  EXPECT_EQ(end.status, 66);
}

TEST(Landlock, VmmRulesFollowTheConfig) {
  vmm::VmConfig config;
  config.kernel = "/k/kernel.elf";
  config.initrds = {"/k/initrd"};
  config.disks = {{"/d/rw.img", false}, {"/d/ro.img", true}};
  config.serial = {vmm::SerialSpec::Kind::kFile, "/out/serial.log"};
  config.api_sock = "/run/vmm/api.sock";
  using base::sandbox::FsAccess;
  const auto rules = vmm::LandlockRules(config);
  ASSERT_EQ(rules.size(), 7u);
  EXPECT_EQ(rules[0].path, "/k/kernel.elf");
  EXPECT_EQ(rules[0].access, FsAccess::kReadFile);
  EXPECT_EQ(rules[2].path, "/d/rw.img");
  EXPECT_EQ(rules[2].access, FsAccess::kReadWriteFile);
  EXPECT_EQ(rules[3].access, FsAccess::kReadFile);
  EXPECT_EQ(rules[4].path, "/out/serial.log");
  EXPECT_EQ(rules[4].access, FsAccess::kWriteFile);
  EXPECT_EQ(rules[5].path, "/run/vmm");
  EXPECT_EQ(rules[5].access, FsAccess::kRemoveInDir);
  EXPECT_EQ(rules[6].path, "/proc/self/status");
}

TEST(Limits, LimitsAreSetAndHold) {
  auto end = RunInChild([] {
    auto limits = base::sandbox::LimitResources(8, 64ull << 20);
    if (!limits) return 1;
    rlimit nofile{}, as{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_AS, &as);
    if (nofile.rlim_cur != limits->nofile || nofile.rlim_max != limits->nofile) return 2;
    if (as.rlim_max != limits->as_bytes || limits->as_bytes < limits->vm_size) return 3;
    // Beyond the margin an allocation fails instead of growing vmm.
    void* big = std::malloc(256ull << 20);
    if (big != nullptr) return 4;
    // And the limit cannot be raised again.
    const rlimit raise{as.rlim_max + 1, as.rlim_max + 1};
    if (setrlimit(RLIMIT_AS, &raise) == 0) return 5;
    return 0;
  });
  EXPECT_EQ(end.status, 0) << end.err;
}

TEST(Limits, AddressSpaceMarginGrowsWithTheVcpus) {
  EXPECT_GT(vmm::AddressSpaceMargin(8), vmm::AddressSpaceMargin(1));
  EXPECT_GE(vmm::AddressSpaceMargin(1), 256ull << 20);
}

}  // namespace
