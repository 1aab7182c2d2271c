#include "vmm/confine.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <filesystem>

#include "base/sandbox/limits.h"

namespace vmm {
namespace {

std::string FolderOf(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void AddOutput(std::vector<base::sandbox::FsRule>& rules, const SerialSpec& spec) {
  if (spec.kind == SerialSpec::Kind::kFile) {
    rules.push_back({spec.path, base::sandbox::FsAccess::kWriteFile});
  } else if (spec.kind == SerialSpec::Kind::kSocket) {
    rules.push_back({FolderOf(spec.path), base::sandbox::FsAccess::kRemoveInDir});
  }
}

}  // namespace

uint64_t AddressSpaceMargin(uint32_t cpus) {
  constexpr uint64_t kMiB = 1ull << 20;
  uint64_t stack = 32 * kMiB;  // when RLIMIT_STACK is unlimited, allow a large default
  if (rlimit limit{}; getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    stack = static_cast<uint64_t>(limit.rlim_cur);
  }
  const uint64_t threads = static_cast<uint64_t>(cpus) + 3;
  return 256 * kMiB + threads * (stack + 128 * kMiB);
}

std::vector<base::sandbox::FsRule> LandlockRules(const VmConfig& config) {
  using base::sandbox::FsAccess;
  std::vector<base::sandbox::FsRule> rules;
  rules.push_back({config.kernel, FsAccess::kReadFile});
  for (const auto& initrd : config.initrds) rules.push_back({initrd, FsAccess::kReadFile});
  for (const auto& disk : config.disks) {
    rules.push_back({disk.path, disk.read_only ? FsAccess::kReadFile : FsAccess::kReadWriteFile});
  }
  AddOutput(rules, config.serial);
  AddOutput(rules, config.console);
  if (config.debugcon.kind == devices::DebugconSpec::Kind::kFile) {
    rules.push_back({config.debugcon.path, FsAccess::kWriteFile});
  }
  if (!config.api_sock.empty()) {
    rules.push_back({FolderOf(config.api_sock), FsAccess::kRemoveInDir});
  }
  if (!config.screenshot.empty()) rules.push_back({config.screenshot, FsAccess::kWriteFile});
  if (config.vnc.kind == VncSpec::Kind::kUnix) {
    rules.push_back({FolderOf(config.vnc.path), FsAccess::kRemoveInDir});
  }
  rules.push_back({"/proc/self/status", FsAccess::kReadFile});
  return rules;
}

base::Result<void> ConfineAfterBuild(const VmConfig& config) {
  const auto rules = LandlockRules(config);
  const auto landlock = TRY(base::sandbox::RestrictFilesystem(rules));
  if (landlock.abi == 0) {
    spdlog::info(
        "landlock: not available on this kernel (needs Linux >= 5.13 with landlock "
        "in the LSM list); file access is not confined");
  } else {
    spdlog::debug("landlock: ABI {}, {} rules, handled access {:#x}", landlock.abi, landlock.rules,
                  landlock.handled);
  }
  const auto limits =
      TRY(base::sandbox::LimitResources(kFdMargin, AddressSpaceMargin(config.cpus)));
  spdlog::debug("limits: RLIMIT_NOFILE {}, RLIMIT_AS {} MiB ({} MiB mapped)", limits.nofile,
                limits.as_bytes >> 20, limits.vm_size >> 20);
  return {};
}

}  // namespace vmm
