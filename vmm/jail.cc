#include "vmm/jail.h"

#include <limits.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace vmm {
namespace {

using base::sandbox::BindKind;
using base::sandbox::JailNeed;

base::Result<std::string> Canonical(const std::string& path, const std::string& what) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}", what, path);
  }
  return std::string(resolved);
}

// A name in a folder that may not exist yet: its folder's canonical path
// plus its name.
base::Result<std::string> CanonicalInFolder(const std::string& path, const std::string& what) {
  const std::filesystem::path name = std::filesystem::path(path).filename();
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  if (name.empty() || name == "." || name == "..") {
    return base::MakeError(base::ErrorKind::kUsage, "{} {}: not a file name", what, path);
  }
  const std::string canonical_folder = TRY(Canonical(folder, what + " " + path + ": its folder"));
  return (std::filesystem::path(canonical_folder) / name).string();
}

// A file vmm creates or truncates: the file itself when it exists, else
// CanonicalInFolder.
base::Result<std::string> CanonicalOutput(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return Canonical(path, what);
  return CanonicalInFolder(path, what);
}

// A socket vmm creates: always CanonicalInFolder (a stale socket is removed
// and made again, so the folder is what is bound).
base::Result<std::string> CanonicalSocket(const std::string& path, const std::string& what) {
  return CanonicalInFolder(path, what);
}

std::string FolderOf(const std::string& canonical) {
  const std::string folder = std::filesystem::path(canonical).parent_path().string();
  return folder.empty() ? std::string("/") : folder;
}

void AddOutput(std::vector<JailNeed>& needs, const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    const bool device = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
    needs.push_back({path, device ? BindKind::kDevice : BindKind::kReadWrite, false, what});
  } else {
    needs.push_back({FolderOf(path), BindKind::kReadWrite, true, what, path});
  }
}

void AddSerial(std::vector<JailNeed>& needs, const SerialSpec& spec, const std::string& flag) {
  if (spec.kind == SerialSpec::Kind::kFile) AddOutput(needs, spec.path, flag);
  if (spec.kind == SerialSpec::Kind::kSocket) {
    needs.push_back({FolderOf(spec.path), BindKind::kReadWrite, true, flag, spec.path});
  }
}

base::Result<void> CanonicalizeSerial(SerialSpec& spec, const std::string& flag) {
  if (spec.kind == SerialSpec::Kind::kFile) spec.path = TRY(CanonicalOutput(spec.path, flag));
  if (spec.kind == SerialSpec::Kind::kSocket) spec.path = TRY(CanonicalSocket(spec.path, flag));
  return {};
}

}  // namespace

base::Result<std::optional<JailFlags>> ParseJailFlags(const std::optional<std::string>& dir,
                                                      const std::optional<std::string>& uid,
                                                      const std::optional<std::string>& gid) {
  if (!dir) {
    if (uid || gid) {
      return base::MakeError(base::ErrorKind::kUsage,
                             "{} only goes with --jail DIR (the ids vmm runs as inside the jail)",
                             uid ? "--uid" : "--gid");
    }
    return std::nullopt;
  }
  if (!uid || !gid) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--jail {} needs --uid U and --gid G: the unprivileged ids vmm runs as "
                           "inside (missing {})",
                           *dir, !uid ? "--uid" : "--gid");
  }
  JailFlags flags;
  flags.dir = *dir;
  flags.ids.uid = TRY(base::sandbox::ParseJailId(*uid, "--uid"));
  flags.ids.gid = TRY(base::sandbox::ParseJailId(*gid, "--gid"));
  return flags;
}

std::string KvmDevicePath() {
  const char* device = std::getenv("VMM_KVM_DEVICE");
  return device != nullptr && *device != '\0' ? device : "/dev/kvm";
}

base::Result<void> CanonicalizeForJail(VmConfig& config) {
  config.kernel = TRY(Canonical(config.kernel, "--kernel"));
  for (auto& initrd : config.initrds) initrd = TRY(Canonical(initrd, "--initrd"));
  for (auto& disk : config.disks) disk.path = TRY(Canonical(disk.path, "--disk"));
  TRY(CanonicalizeSerial(config.serial, "--serial"));
  TRY(CanonicalizeSerial(config.console, "--console"));
  if (config.debugcon.kind == devices::DebugconSpec::Kind::kFile) {
    config.debugcon.path = TRY(CanonicalOutput(config.debugcon.path, "--debugcon"));
  }
  if (!config.api_sock.empty())
    config.api_sock = TRY(CanonicalSocket(config.api_sock, "--api-sock"));
  if (!config.screenshot.empty()) {
    config.screenshot = TRY(CanonicalOutput(config.screenshot, "--screenshot"));
  }
  return {};
}

base::Result<std::vector<JailNeed>> JailNeedsFor(const VmConfig& config,
                                                 const std::string& kvm_device) {
  std::vector<JailNeed> needs;
  needs.push_back({config.kernel, BindKind::kReadOnly, false, "--kernel"});
  for (const auto& initrd : config.initrds) {
    needs.push_back({initrd, BindKind::kReadOnly, false, "--initrd"});
  }
  for (const auto& disk : config.disks) {
    needs.push_back(
        {disk.path, disk.read_only ? BindKind::kReadOnly : BindKind::kReadWrite, false, "--disk"});
  }
  AddSerial(needs, config.serial, "--serial");
  AddSerial(needs, config.console, "--console");
  if (config.debugcon.kind == devices::DebugconSpec::Kind::kFile) {
    AddOutput(needs, config.debugcon.path, "--debugcon");
  }
  if (!config.api_sock.empty()) {
    needs.push_back(
        {FolderOf(config.api_sock), BindKind::kReadWrite, true, "--api-sock", config.api_sock});
  }
  if (!config.screenshot.empty()) AddOutput(needs, config.screenshot, "--screenshot");
  // A missing device is left out: vmm then ends with 69 ("KVM unavailable")
  // inside the jail, with the message it gives outside.
  char resolved[PATH_MAX];
  if (::realpath(kvm_device.c_str(), resolved) != nullptr) {
    needs.push_back({resolved, BindKind::kDevice, false, "the KVM device"});
  }
  return needs;
}

std::vector<std::string> JailSockets(const VmConfig& config) {
  std::vector<std::string> sockets;
  for (const SerialSpec* spec : {&config.serial, &config.console}) {
    if (spec->kind == SerialSpec::Kind::kSocket) sockets.push_back(spec->path);
  }
  if (!config.api_sock.empty()) sockets.push_back(config.api_sock);
  return sockets;
}

base::Result<void> CheckJailCanHold(const VmConfig& config) {
  // The API and the consoles listen on Unix sockets only; --vnc is the one
  // listener that may be TCP.
  if (config.vnc.kind == VncSpec::Kind::kTcp) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--vnc {} listens on TCP, which --jail's network namespace (a "
                           "loopback that is down) makes unreachable from the host",
                           VncSpecText(config.vnc));
  }
  if (config.vnc.kind == VncSpec::Kind::kUnix) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--vnc {}: the live view runs vmm-vnc, a dynamically linked program "
                           "the jail does not hold (its mounts are noexec); --vnc does not go "
                           "with --jail yet",
                           VncSpecText(config.vnc));
  }
  return {};
}

base::Result<void> EnterJailFor(VmConfig& config, const JailFlags& flags) {
  TRY(base::sandbox::CheckJailCaller(::geteuid()));
  const std::string root = TRY(base::sandbox::CheckJailDir(flags.dir));
  TRY(CheckJailCanHold(config));
  TRY(CanonicalizeForJail(config));
  std::string kvm_device = KvmDevicePath();
  if (char resolved[PATH_MAX]; ::realpath(kvm_device.c_str(), resolved) != nullptr) {
    // Inside, the working directory is "/": OpenKvm must find the same node.
    kvm_device = resolved;
    ::setenv("VMM_KVM_DEVICE", resolved, 1);
  }
  const auto needs = TRY(JailNeedsFor(config, kvm_device));
  const auto plan = TRY(base::sandbox::PlanMounts(root, needs));
  for (const auto& bind : plan.binds) {
    spdlog::debug("--jail: bind {} {} ({})", bind.path, base::sandbox::BindKindName(bind.kind),
                  bind.what);
  }
  base::sandbox::Supervision supervision;
  supervision.sockets = JailSockets(config);
  supervision.seccomp = config.seccomp;
  TRY(base::sandbox::EnterJail(plan, flags.ids, supervision));
  spdlog::info(
      "--jail: in {} as uid {} gid {}: pid {} of its own pid, mount, net, IPC and UTS "
      "namespaces, no capabilities",
      root, flags.ids.uid, flags.ids.gid, ::getpid());
  return {};
}

}  // namespace vmm
