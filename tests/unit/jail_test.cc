// The jail (base/sandbox/jail.h, vmm/jail.h): flag and directory checks and
// the mount plan without root; entering it (namespaces, binds, the drop,
// the supervisor) in a forked child when the tests run as root, skipped
// otherwise.
#include "base/sandbox/jail.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>

#include "base/sandbox/landlock.h"
#include "base/sandbox/limits.h"
#include "vmm/jail.h"

namespace {

namespace fs = std::filesystem;
using base::sandbox::BindKind;
using base::sandbox::JailBind;
using base::sandbox::JailNeed;

// A fresh directory under the system's temporary folder, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "jail-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name, const std::string& text = "x") const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

std::string Canonical(const std::string& path) { return fs::canonical(path).string(); }

template <typename T>
std::string MessageOf(const base::Result<T>& result) {
  return result ? std::string("(no error)") : result.error().message();
}

// --- Flags ------------------------------------------------------------------

TEST(JailFlags, NoneOfThemMeansNoJail) {
  auto flags = vmm::ParseJailFlags(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(flags) << MessageOf(flags);
  EXPECT_FALSE(flags->has_value());
}

TEST(JailFlags, AllThreeParse) {
  auto flags = vmm::ParseJailFlags("/srv/jail", "65534", "65533");
  ASSERT_TRUE(flags && flags->has_value()) << MessageOf(flags);
  EXPECT_EQ((*flags)->dir, "/srv/jail");
  EXPECT_EQ((*flags)->ids.uid, 65534u);
  EXPECT_EQ((*flags)->ids.gid, 65533u);
}

TEST(JailFlags, JailWithoutUidOrGidIsAUsageErrorNamingTheMissingFlag) {
  auto no_uid = vmm::ParseJailFlags("/srv/jail", std::nullopt, "1");
  ASSERT_FALSE(no_uid);
  EXPECT_EQ(no_uid.error().exit_status(), 64);
  EXPECT_NE(no_uid.error().message().find("missing --uid"), std::string::npos)
      << no_uid.error().message();
  auto no_gid = vmm::ParseJailFlags("/srv/jail", "1", std::nullopt);
  ASSERT_FALSE(no_gid);
  EXPECT_NE(no_gid.error().message().find("missing --gid"), std::string::npos);
}

TEST(JailFlags, UidOrGidWithoutJailIsAUsageError) {
  auto uid = vmm::ParseJailFlags(std::nullopt, "1", std::nullopt);
  ASSERT_FALSE(uid);
  EXPECT_EQ(uid.error().exit_status(), 64);
  EXPECT_EQ(uid.error().message().rfind("--uid only goes with --jail", 0), 0u);
  auto gid = vmm::ParseJailFlags(std::nullopt, std::nullopt, "1");
  ASSERT_FALSE(gid);
  EXPECT_EQ(gid.error().message().rfind("--gid only goes with --jail", 0), 0u);
}

TEST(JailIds, RootAndOutOfRangeAndNonNumbersAreRefused) {
  for (const char* bad : {"0", "00", "4294967295", "4294967296", "99999999999", "", "-1", "+5",
                          "nobody", "12a", " 1"}) {
    auto id = base::sandbox::ParseJailId(bad, "--uid");
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().exit_status(), 64) << bad;
    EXPECT_EQ(id.error().message().rfind("--uid", 0), 0u) << id.error().message();
  }
  EXPECT_NE(MessageOf(base::sandbox::ParseJailId("0", "--gid")).find("leave root behind"),
            std::string::npos);
}

TEST(JailIds, TheWholeUnprivilegedRangeParses) {
  EXPECT_EQ(*base::sandbox::ParseJailId("1", "--uid"), 1u);
  EXPECT_EQ(*base::sandbox::ParseJailId("65534", "--uid"), 65534u);
  EXPECT_EQ(*base::sandbox::ParseJailId("4294967294", "--uid"), 4294967294u);
}

TEST(JailCaller, OnlyRootMayBuildAJail) {
  EXPECT_TRUE(base::sandbox::CheckJailCaller(0));
  auto user = base::sandbox::CheckJailCaller(1000);
  ASSERT_FALSE(user);
  EXPECT_EQ(user.error().exit_status(), 64);
  EXPECT_NE(user.error().message().find("--jail: building the jail needs root (vmm runs as uid "
                                        "1000)"),
            std::string::npos)
      << user.error().message();
}

// --- The directory ----------------------------------------------------------

TEST(JailDir, AMissingDirectoryIsNoInput) {
  TempDir tmp;
  auto dir = base::sandbox::CheckJailDir(tmp.path() + "/absent");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().exit_status(), 66);
  EXPECT_EQ(dir.error().message(), "--jail " + tmp.path() + "/absent");
  EXPECT_NE(dir.error().ToString().find("No such file"), std::string::npos);
}

TEST(JailDir, AFileIsNotADirectory) {
  TempDir tmp;
  auto dir = base::sandbox::CheckJailDir(tmp.File("file"));
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().exit_status(), 78);
  EXPECT_NE(dir.error().message().find("not a directory"), std::string::npos);
}

TEST(JailDir, TheRootDirectoryIsRefused) {
  auto dir = base::sandbox::CheckJailDir("/");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().exit_status(), 78);
  EXPECT_NE(dir.error().message().find("not /"), std::string::npos) << dir.error().message();
}

TEST(JailDir, ADirectoryNotOwnedByRootIsRefused) {
  TempDir tmp;
  if (geteuid() == 0) {
    ASSERT_EQ(chown(tmp.path().c_str(), 65534, 65534), 0);
  }
  auto dir = base::sandbox::CheckJailDir(tmp.path());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().exit_status(), 78);
  EXPECT_NE(dir.error().message().find("not root"), std::string::npos) << dir.error().message();
}

TEST(JailDir, AnEmptyRootOwnedDirectoryIsAcceptedByItsCanonicalPath) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a root-owned directory (run as root)";
  TempDir tmp;
  ASSERT_EQ(chmod(tmp.path().c_str(), 0755), 0);
  ASSERT_EQ(mkdir((tmp.path() + "/jail").c_str(), 0755), 0);
  ASSERT_EQ(symlink("jail", (tmp.path() + "/link").c_str()), 0);
  auto dir = base::sandbox::CheckJailDir(tmp.path() + "/link/");
  ASSERT_TRUE(dir) << MessageOf(dir);
  EXPECT_EQ(*dir, Canonical(tmp.path()) + "/jail");
}

TEST(JailDir, ANonEmptyOrGroupWritableDirectoryIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a root-owned directory (run as root)";
  TempDir tmp;
  ASSERT_EQ(chmod(tmp.path().c_str(), 0755), 0);
  tmp.File("left-over");
  auto full = base::sandbox::CheckJailDir(tmp.path());
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().exit_status(), 78);
  EXPECT_NE(full.error().message().find("not empty (it holds 'left-over')"), std::string::npos)
      << full.error().message();
  TempDir open;
  ASSERT_EQ(chmod(open.path().c_str(), 0775), 0);
  auto writable = base::sandbox::CheckJailDir(open.path());
  ASSERT_FALSE(writable);
  EXPECT_EQ(writable.error().exit_status(), 78);
  EXPECT_NE(writable.error().message().find("writable by group or others (mode 775)"),
            std::string::npos)
      << writable.error().message();
}

// --- The mount plan ---------------------------------------------------------

TEST(MountPlan, EachPathIsBoundOnceAndFoldersComeBeforeWhatLiesBeneath) {
  const std::vector<JailNeed> needs = {
      {"/srv/vm/disk.img", BindKind::kReadWrite, false, "--disk"},
      {"/srv/images/kernel.elf", BindKind::kReadOnly, false, "--kernel"},
      {"/srv/vm", BindKind::kReadWrite, true, "--api-sock"},
      {"/srv/vm-b/initrd", BindKind::kReadOnly, false, "--initrd"},
      {"/dev/kvm", BindKind::kDevice, false, "the KVM device"},
  };
  auto plan = base::sandbox::PlanMounts("/srv/jail", needs);
  ASSERT_TRUE(plan) << MessageOf(plan);
  EXPECT_EQ(plan->root, "/srv/jail");
  const std::vector<JailBind> expected = {
      {"/dev/kvm", BindKind::kDevice, false, "the KVM device"},
      {"/srv/images/kernel.elf", BindKind::kReadOnly, false, "--kernel"},
      {"/srv/vm", BindKind::kReadWrite, true, "--api-sock"},
      {"/srv/vm-b/initrd", BindKind::kReadOnly, false, "--initrd"},
      {"/srv/vm/disk.img", BindKind::kReadWrite, false, "--disk"},
  };
  EXPECT_EQ(plan->binds, expected);
  // The folder is mounted before the disk beneath it.
  auto index = [&](const std::string& path) {
    for (size_t i = 0; i < plan->binds.size(); ++i) {
      if (plan->binds[i].path == path) return i;
    }
    return plan->binds.size();
  };
  EXPECT_LT(index("/srv/vm"), index("/srv/vm/disk.img"));
}

TEST(MountPlan, APathNamedTwiceGetsTheWidestKindAndBothNames) {
  const std::vector<JailNeed> needs = {
      {"/img/a", BindKind::kReadOnly, false, "--kernel"},
      {"/img/a", BindKind::kReadWrite, false, "--disk"},
      {"/img/a", BindKind::kReadOnly, false, "--kernel"},
      {"/dev/null", BindKind::kReadWrite, false, "--serial"},
      {"/dev/null", BindKind::kDevice, false, "the KVM device"},
  };
  auto plan = base::sandbox::PlanMounts("/jail", needs);
  ASSERT_TRUE(plan) << MessageOf(plan);
  ASSERT_EQ(plan->binds.size(), 2u);
  EXPECT_EQ(plan->binds[0],
            (JailBind{"/dev/null", BindKind::kDevice, false, "--serial, the KVM device"}));
  EXPECT_EQ(plan->binds[1], (JailBind{"/img/a", BindKind::kReadWrite, false, "--kernel, --disk"}));
}

TEST(MountPlan, APathInsideTheJailIsAUsageErrorNamingItsFlag) {
  const JailNeed inside{"/srv/jail/api.sock", BindKind::kReadWrite, false, "--api-sock"};
  auto plan = base::sandbox::PlanMounts("/srv/jail", {&inside, 1});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().exit_status(), 64);
  EXPECT_EQ(plan.error().message().rfind("--api-sock /srv/jail/api.sock lies inside --jail "
                                         "/srv/jail",
                                         0),
            0u)
      << plan.error().message();
  const JailNeed itself{"/srv/jail", BindKind::kReadWrite, true, "--serial"};
  EXPECT_FALSE(base::sandbox::PlanMounts("/srv/jail", {&itself, 1}));
  // A neighbour whose name starts the same is not inside.
  const JailNeed neighbour{"/srv/jail2/k", BindKind::kReadOnly, false, "--kernel"};
  EXPECT_TRUE(base::sandbox::PlanMounts("/srv/jail", {&neighbour, 1}));
}

TEST(MountPlan, TheJailMayLieInsideABoundFolder) {
  const JailNeed folder{"/srv/vm", BindKind::kReadWrite, true, "--api-sock"};
  auto plan = base::sandbox::PlanMounts("/srv/vm/jail", {&folder, 1});
  ASSERT_TRUE(plan) << MessageOf(plan);
  EXPECT_EQ(plan->binds.size(), 1u);
}

TEST(MountPlan, RootProcAndUncanonicalPathsAreRefused) {
  for (const char* bad : {"/", "/proc/self/status", "/proc", "relative/file", "/a/../b", "/a/./b",
                          "/a/", "/a//b", ""}) {
    const JailNeed need{bad, BindKind::kReadOnly, false, "--kernel"};
    auto plan = base::sandbox::PlanMounts("/jail", {&need, 1});
    ASSERT_FALSE(plan) << bad;
    EXPECT_EQ(plan.error().exit_status(), 64) << bad;
    EXPECT_EQ(plan.error().message().rfind("--kernel", 0), 0u) << plan.error().message();
  }
  const JailNeed fine{"/processes/k", BindKind::kReadOnly, false, "--kernel"};
  EXPECT_TRUE(base::sandbox::PlanMounts("/jail", {&fine, 1}));
  EXPECT_FALSE(base::sandbox::PlanMounts("/", {}));
  EXPECT_FALSE(base::sandbox::PlanMounts("jail", {}));
}

TEST(MountPlan, BindFlagsAllowDevicesOnlyForDevicesAndWritesOnlyForReadWrite) {
  using base::sandbox::BindMountFlags;
  for (BindKind kind : {BindKind::kReadOnly, BindKind::kReadWrite, BindKind::kDevice}) {
    EXPECT_NE(BindMountFlags(kind) & MS_NOSUID, 0u);
    EXPECT_NE(BindMountFlags(kind) & MS_NOEXEC, 0u);
  }
  EXPECT_NE(BindMountFlags(BindKind::kReadOnly) & MS_RDONLY, 0u);
  EXPECT_NE(BindMountFlags(BindKind::kReadOnly) & MS_NODEV, 0u);
  EXPECT_EQ(BindMountFlags(BindKind::kReadWrite) & MS_RDONLY, 0u);
  EXPECT_NE(BindMountFlags(BindKind::kReadWrite) & MS_NODEV, 0u);
  EXPECT_EQ(BindMountFlags(BindKind::kDevice) & (MS_RDONLY | MS_NODEV), 0u);
}

// --- From a configuration ---------------------------------------------------

TEST(JailConfig, PathsBecomeCanonicalAndAbsolute) {
  TempDir tmp;
  const std::string real = Canonical(tmp.path());
  tmp.File("kernel.elf");
  ASSERT_EQ(symlink("kernel.elf", (tmp.path() + "/current").c_str()), 0);
  tmp.File("disk.img");
  ASSERT_EQ(mkdir((tmp.path() + "/run").c_str(), 0755), 0);
  vmm::VmConfig config;
  config.kernel = tmp.path() + "/current";
  config.disks.push_back({tmp.path() + "/./disk.img", true});
  config.api_sock = tmp.path() + "/run/../run/api.sock";
  config.serial = {vmm::SerialSpec::Kind::kFile, tmp.path() + "/serial.log"};
  const std::string cwd = fs::current_path().string();
  fs::current_path(tmp.path());
  config.initrds.push_back("disk.img");  // relative to the working directory
  auto done = vmm::CanonicalizeForJail(config);
  fs::current_path(cwd);
  ASSERT_TRUE(done) << MessageOf(done);
  EXPECT_EQ(config.kernel, real + "/kernel.elf");
  EXPECT_EQ(config.initrds[0], real + "/disk.img");
  EXPECT_EQ(config.disks[0].path, real + "/disk.img");
  EXPECT_EQ(config.api_sock, real + "/run/api.sock");
  EXPECT_EQ(config.serial.path, real + "/serial.log");
}

TEST(JailConfig, AMissingInputOrOutputFolderIsNoInputNamingTheFlag) {
  TempDir tmp;
  vmm::VmConfig config;
  config.kernel = tmp.path() + "/absent.elf";
  auto kernel = vmm::CanonicalizeForJail(config);
  ASSERT_FALSE(kernel);
  EXPECT_EQ(kernel.error().exit_status(), 66);
  EXPECT_EQ(kernel.error().message(), "--kernel " + tmp.path() + "/absent.elf");

  config.kernel = tmp.File("kernel.elf");
  config.console = {vmm::SerialSpec::Kind::kSocket, tmp.path() + "/no/such/console.sock"};
  auto console = vmm::CanonicalizeForJail(config);
  ASSERT_FALSE(console);
  EXPECT_EQ(console.error().exit_status(), 66);
  EXPECT_NE(console.error().message().find("--console " + tmp.path() +
                                           "/no/such/console.sock: its folder"),
            std::string::npos)
      << console.error().message();
}

TEST(JailConfig, NeedsFollowTheConfig) {
  TempDir tmp;
  const std::string real = Canonical(tmp.path());
  ASSERT_EQ(mkdir((tmp.path() + "/sockets").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((tmp.path() + "/out").c_str(), 0755), 0);
  vmm::VmConfig config;
  config.kernel = tmp.File("kernel.elf");
  config.initrds = {tmp.File("initrd")};
  config.disks = {{tmp.File("ro.img"), true}, {tmp.File("rw.img"), false}};
  config.serial = {vmm::SerialSpec::Kind::kSocket, tmp.path() + "/sockets/serial.sock"};
  config.console = {vmm::SerialSpec::Kind::kFile, tmp.File("console.log")};
  config.debugcon = {devices::DebugconSpec::Kind::kFile, tmp.path() + "/out/debugcon.log"};
  config.api_sock = tmp.path() + "/sockets/api.sock";
  config.screenshot = "/dev/null";
  ASSERT_TRUE(vmm::CanonicalizeForJail(config));
  auto needs = vmm::JailNeedsFor(config, "/dev/null");
  ASSERT_TRUE(needs) << MessageOf(needs);
  std::map<std::string, std::pair<BindKind, bool>> got;
  for (const auto& need : *needs) {
    got[need.path] = {std::max(got.count(need.path) ? got[need.path].first : need.kind, need.kind),
                      need.directory};
  }
  const std::map<std::string, std::pair<BindKind, bool>> expected = {
      {real + "/kernel.elf", {BindKind::kReadOnly, false}},
      {real + "/initrd", {BindKind::kReadOnly, false}},
      {real + "/ro.img", {BindKind::kReadOnly, false}},
      {real + "/rw.img", {BindKind::kReadWrite, false}},
      {real + "/sockets", {BindKind::kReadWrite, true}},       // serial socket and API, one folder
      {real + "/console.log", {BindKind::kReadWrite, false}},  // exists: the file itself
      {real + "/out", {BindKind::kReadWrite, true}},           // does not exist yet: its folder
      {"/dev/null", {BindKind::kDevice, false}},  // a device as output, and the "KVM device"
  };
  EXPECT_EQ(got, expected);
  EXPECT_EQ(vmm::JailSockets(config),
            (std::vector<std::string>{real + "/sockets/serial.sock", real + "/sockets/api.sock"}));
  auto plan = base::sandbox::PlanMounts("/nonexistent-jail", *needs);
  ASSERT_TRUE(plan) << MessageOf(plan);
  EXPECT_EQ(plan->binds.size(), expected.size());
}

TEST(JailConfig, AMissingKvmDeviceIsNotBound) {
  TempDir tmp;
  vmm::VmConfig config;
  config.kernel = tmp.File("kernel.elf");
  config.serial = {vmm::SerialSpec::Kind::kNone, ""};
  ASSERT_TRUE(vmm::CanonicalizeForJail(config));
  auto needs = vmm::JailNeedsFor(config, tmp.path() + "/no-kvm");
  ASSERT_TRUE(needs);
  ASSERT_EQ(needs->size(), 1u);
  EXPECT_EQ((*needs)[0].what, "--kernel");
}

TEST(JailConfig, VncIsRefusedWithItsReason) {
  vmm::VmConfig config;
  EXPECT_TRUE(vmm::CheckJailCanHold(config));
  config.vnc = {vmm::VncSpec::Kind::kTcp, "127.0.0.1", 5901, ""};
  auto tcp = vmm::CheckJailCanHold(config);
  ASSERT_FALSE(tcp);
  EXPECT_EQ(tcp.error().exit_status(), 64);
  EXPECT_EQ(tcp.error().message().rfind("--vnc ", 0), 0u);
  EXPECT_NE(tcp.error().message().find("listens on TCP"), std::string::npos)
      << tcp.error().message();
  config.vnc = {vmm::VncSpec::Kind::kUnix, "", 0, "/run/vm/vnc.sock"};
  auto unix_socket = vmm::CheckJailCanHold(config);
  ASSERT_FALSE(unix_socket);
  EXPECT_EQ(unix_socket.error().exit_status(), 64);
  EXPECT_NE(unix_socket.error().message().find("vmm-vnc"), std::string::npos);
}

// --- Descriptors when /proc/self/fd cannot be read --------------------------

TEST(JailFds, ProbingFindsTheSameHighestDescriptorAsProc) {
  const int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 40);
  ASSERT_GE(fd, 40);
  auto from_proc = base::sandbox::HighestOpenFd();
  ASSERT_TRUE(from_proc);
  EXPECT_EQ(base::sandbox::HighestOpenFdByProbing(), *from_proc);
  EXPECT_GE(*from_proc, fd);
  close(fd);
}

TEST(JailFds, UnderLandlockTheHighestDescriptorIsStillFound) {
  if (base::sandbox::LandlockAbi() == 0) GTEST_SKIP() << "no Landlock on this kernel";
  // vmm's own rules grant /proc/self/status but not /proc/self/fd, which
  // ConfineAfterBuild's RLIMIT_NOFILE needs: the probe answers instead.
  const pid_t pid = fork();
  if (pid == 0) {
    const base::sandbox::FsRule rules[] = {
        {"/proc/self/status", base::sandbox::FsAccess::kReadFile}};
    if (!base::sandbox::RestrictFilesystem(rules)) _exit(1);
    const bool proc_fd_readable = opendir("/proc/self/fd") != nullptr;
    auto highest = base::sandbox::HighestOpenFd();
    if (!highest || *highest < STDERR_FILENO) _exit(2);
    _exit(proc_fd_readable ? 3 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: Landlock let /proc/self/fd be read";
}

// --- Entering it (root only) ------------------------------------------------

// Runs `body` in a forked child that enters a jail built from `plan`; the
// child of that is the jailed one. Returns the status the supervisor ended
// with (or -signal). `on_ready(supervisor_pid)` runs once the jailed body
// has written a byte to the pipe it gets.
struct JailRun {
  int status = -1;
  std::string err;
};

JailRun RunJailed(const base::sandbox::MountPlan& plan, base::sandbox::Supervision supervision,
                  const std::function<int(int ready_fd)>& body,
                  const std::function<void(pid_t)>& on_ready = nullptr) {
  int err_pipe[2], ready_pipe[2];
  EXPECT_EQ(pipe2(err_pipe, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(ready_pipe, O_CLOEXEC), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err_pipe[1], STDERR_FILENO);
    close(ready_pipe[0]);
    auto entered = base::sandbox::EnterJail(plan, {65534, 65534}, supervision);
    if (!entered) {
      std::fprintf(stderr, "%s\n", entered.error().ToString().c_str());
      _exit(entered.error().exit_status());
    }
    _exit(body(ready_pipe[1]));
  }
  close(err_pipe[1]);
  close(ready_pipe[1]);
  if (on_ready) {
    char byte;
    if (read(ready_pipe[0], &byte, 1) == 1) on_ready(pid);
  }
  close(ready_pipe[0]);
  JailRun run;
  char buf[512];
  ssize_t n;
  while ((n = read(err_pipe[0], buf, sizeof(buf))) > 0) run.err.append(buf, static_cast<size_t>(n));
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return run;
}

std::map<std::string, std::string> StatusFields() {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    fields[line.substr(0, colon)] = value;
  }
  return fields;
}

// A root-owned, empty jail directory and a host folder with a kernel-like
// file, a read-write disk and a folder for sockets, all readable by 65534.
class JailEntry : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "building a jail needs root";
    ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
    root_ = Canonical(tmp_.path()) + "/jail";
    host_ = Canonical(tmp_.path()) + "/host";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(host_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((host_ + "/run").c_str(), 0777), 0);
    ASSERT_EQ(chmod((host_ + "/run").c_str(), 0777), 0);
    std::ofstream(host_ + "/kernel") << "kernel bytes";
    // Both the jailed uid's, so that only the mount can refuse a write.
    ASSERT_EQ(chown((host_ + "/kernel").c_str(), 65534, 65534), 0);
    std::ofstream(host_ + "/disk") << "disk";
    ASSERT_EQ(chown((host_ + "/disk").c_str(), 65534, 65534), 0);
    std::ofstream(host_ + "/secret") << "not bound";
    const std::vector<JailNeed> needs = {
        {host_ + "/kernel", BindKind::kReadOnly, false, "--kernel"},
        {host_ + "/disk", BindKind::kReadWrite, false, "--disk"},
        {host_ + "/run", BindKind::kReadWrite, true, "--api-sock"},
        {"/dev/null", BindKind::kDevice, false, "the KVM device"},
    };
    auto plan = base::sandbox::PlanMounts(root_, needs);
    ASSERT_TRUE(plan) << MessageOf(plan);
    plan_ = *plan;
    // An unprivileged user namespace (a container) cannot do this: skip.
    const pid_t probe = fork();
    if (probe == 0) _exit(unshare(CLONE_NEWNS) == 0 ? 0 : 1);
    int status = 0;
    waitpid(probe, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) GTEST_SKIP() << "no mount namespaces here";
  }

  TempDir tmp_;
  std::string root_, host_;
  base::sandbox::MountPlan plan_;
};

TEST_F(JailEntry, TheJailHoldsOnlyWhatWasBoundWithTheirModesAndNoPrivileges) {
  const std::string host = host_;
  auto run = RunJailed(plan_, {}, [&](int) {
    int failures = 0;
    auto fail = [&](const std::string& what) {
      std::fprintf(stderr, "jailed: %s (errno %s)\n", what.c_str(), std::strerror(errno));
      ++failures;
    };
    if (getpid() != 1) fail("not pid 1 of a new pid namespace");
    if (getuid() != 65534 || getgid() != 65534) fail("ids");
    std::ifstream kernel(host + "/kernel");
    std::string text;
    std::getline(kernel, text);
    if (text != "kernel bytes") fail("kernel not readable: '" + text + "'");
    if (open((host + "/kernel").c_str(), O_WRONLY | O_CLOEXEC) >= 0 || errno != EROFS) {
      fail("kernel writable");
    }
    const int disk = open((host + "/disk").c_str(), O_RDWR | O_CLOEXEC);
    if (disk < 0 || write(disk, "D", 1) != 1) fail("disk not writable");
    if (disk >= 0) close(disk);
    if (access((host + "/secret").c_str(), F_OK) == 0) fail("an unbound file is visible");
    if (access("/etc/passwd", F_OK) == 0) fail("the host's /etc is visible");
    if (mkdir("/new", 0755) == 0 || errno != EROFS) fail("the jail's root is writable");
    const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) fail("the device cannot be opened");
    if (devnull >= 0) close(devnull);
    if (access("/proc/self/status", R_OK) != 0) fail("no /proc");
    auto fields = StatusFields();
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
      if (fields[set] != "0000000000000000") fail(std::string(set) + " " + fields[set]);
    }
    if (fields["NoNewPrivs"] != "1") fail("no_new_privs");
    if (setuid(0) == 0) fail("setuid(0) worked");
    if (base::sandbox::HighestOpenFdByProbing() < STDERR_FILENO) fail("fd probing");
    // A socket made in the bound folder is the host's: the supervisor
    // removes it after the end (vmm would, but this "vmm" leaves it).
    const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/run/left.sock", host.c_str());
    if (bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) fail("bind");
    return failures == 0 ? 42 : 1;
  });
  EXPECT_EQ(run.status, 42) << run.err;
  // The host is as it was: the disk got its byte, the jail directory is
  // still empty, the socket is gone.
  std::ifstream disk(host_ + "/disk");
  std::string text;
  std::getline(disk, text);
  EXPECT_EQ(text, "Disk");
  EXPECT_TRUE(fs::is_empty(root_));
  EXPECT_TRUE(fs::exists(host_ + "/run/left.sock"))
      << "the socket is removed only when the supervisor is told about it";
}

TEST_F(JailEntry, ASocketInABoundFolderAnswersFromOutsideTheJail) {
  const std::string path = host_ + "/run/api.sock";
  std::string greeting;
  auto run = RunJailed(
      plan_, {},
      [&](int ready) {
        const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
        if (bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 1;
        if (listen(sock, 1) != 0) return 2;
        (void)!write(ready, "r", 1);
        const int client = accept4(sock, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0 || write(client, "hi", 2) != 2) return 3;
        close(client);
        unlink(path.c_str());
        return 5;
      },
      [&](pid_t) {
        const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
        if (connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
          char buf[2];
          if (read(sock, buf, 2) == 2) greeting.assign(buf, 2);
        }
        close(sock);
      });
  EXPECT_EQ(run.status, 5) << run.err;
  EXPECT_EQ(greeting, "hi");
}

TEST_F(JailEntry, TheSupervisorRemovesLeftoverSocketsOfTheJailedUidOnly) {
  const std::string host = host_;
  // One socket the jailed process makes and one a host process made as root.
  const int mine = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/run/root.sock", host_.c_str());
  ASSERT_EQ(bind(mine, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  base::sandbox::Supervision supervision;
  supervision.sockets = {host_ + "/run/left.sock", host_ + "/run/root.sock",
                         host_ + "/run/never.sock"};
  auto run = RunJailed(plan_, supervision, [&](int) {
    const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un left{};
    left.sun_family = AF_UNIX;
    std::snprintf(left.sun_path, sizeof(left.sun_path), "%s/run/left.sock", host.c_str());
    return bind(sock, reinterpret_cast<sockaddr*>(&left), sizeof(left)) == 0 ? 7 : 1;
  });
  EXPECT_EQ(run.status, 7) << run.err;
  EXPECT_FALSE(fs::exists(host_ + "/run/left.sock"));
  EXPECT_TRUE(fs::exists(host_ + "/run/root.sock"));
  close(mine);
}

TEST_F(JailEntry, TheSupervisorForwardsSigtermAndExitsWithTheChildsStatus) {
  auto run = RunJailed(
      plan_, {},
      [](int ready) {
        (void)!write(ready, "r", 1);
        for (;;) pause();  // the set-up handler ends it with 128 + SIGTERM
        return 0;
      },
      [](pid_t supervisor) { kill(supervisor, SIGTERM); });
  EXPECT_EQ(run.status, 128 + SIGTERM) << run.err;
}

TEST_F(JailEntry, ASignalDeathOfTheChildIsReportedAs128PlusTheSignal) {
  auto run = RunJailed(plan_, {}, [](int) {
    // pid 1 ignores the signals it sends itself (even SIGKILL), but not a
    // fault the kernel raises.
    volatile int* nowhere = nullptr;
    *nowhere = 1;
    return 0;
  });
  EXPECT_EQ(run.status, 128 + SIGSEGV) << run.err;
}

TEST_F(JailEntry, TheSupervisorWaitsUnderItsOwnFilterOrNone) {
  for (auto mode : {base::sandbox::SeccompMode::kKill, base::sandbox::SeccompMode::kOff}) {
    base::sandbox::Supervision supervision;
    supervision.seccomp = mode;
    auto run = RunJailed(plan_, supervision, [](int) { return 3; });
    EXPECT_EQ(run.status, 3) << run.err;
    EXPECT_EQ(run.err.find("seccomp"), std::string::npos) << run.err;
  }
}

TEST_F(JailEntry, AMountFailureInTheChildIsPassedOnAsItsStatus) {
  base::sandbox::MountPlan plan = plan_;
  plan.binds.push_back({host_ + "/vanished", BindKind::kReadOnly, false, "--initrd"});
  auto run = RunJailed(plan, {}, [](int) { return 0; });
  EXPECT_EQ(run.status, 66) << run.err;
  EXPECT_NE(run.err.find("--jail: binding " + host_ + "/vanished for --initrd"), std::string::npos)
      << run.err;
  EXPECT_TRUE(fs::is_empty(root_));
}

}  // namespace
