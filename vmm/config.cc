#include "vmm/config.h"

#include <cmath>
#include <filesystem>
#include <string_view>

#include "base/guest_memory.h"
#include "vmm/json_util.h"

namespace vmm {
namespace {

using json::Json;

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

}  // namespace

base::Result<DiskConfig> ParseDiskSpec(std::string_view spec) {
  DiskConfig disk;
  std::string_view path = spec;
  if (auto comma = spec.find(','); comma != std::string_view::npos) {
    path = spec.substr(0, comma);
    std::string_view options = spec.substr(comma + 1);
    if (options != "ro") {
      return base::MakeError(base::ErrorKind::kUsage, "--disk {}: unknown option '{}' (only 'ro')",
                             spec, options);
    }
    disk.read_only = true;
  }
  if (path.empty())
    return base::MakeError(base::ErrorKind::kUsage, "--disk '{}': empty path", spec);
  disk.path = std::string(path);
  return disk;
}

base::Result<void> CheckTimeout(double seconds, base::ErrorKind kind, std::string_view name) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxTimeoutSeconds) {
    return base::MakeError(kind, "{}: {} is not a number of seconds in 0..{:.0f} (0: no timeout)",
                           name, seconds, kMaxTimeoutSeconds);
  }
  return {};
}

base::Result<VmConfig> ParseConfig(std::string_view json_text, const std::string& base_dir,
                                   const std::string& origin) {
  Json root = TRY(json::Parse(json_text, origin));
  if (!root.is_object()) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: the top level must be a JSON object",
                           origin);
  }
  VmConfig config;
  auto bad = [&](const std::string& field, std::string_view expected) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: field '{}' must be {}", origin, field,
                           expected);
  };
  auto path = [&](const Json& value, const std::string& field) -> base::Result<std::string> {
    return Resolve(base_dir, TRY(json::GetPath(value, origin, field)));
  };
  // serial and console: a backend, checked now; file and socket paths resolve
  // against the file's folder.
  auto backend = [&](const Json& value, const std::string& field) -> base::Result<SerialSpec> {
    if (!value.is_string()) {
      return std::unexpected(json::FieldError(
          origin, field,
          fmt::format("must be \"stdio\", \"file:PATH\", \"socket:PATH\" or \"none\", not {}",
                      value.type_name())));
    }
    auto spec =
        ParseSerialSpec(value.get<std::string>(), fmt::format("{}: field '{}':", origin, field));
    if (!spec) return base::MakeError(base::ErrorKind::kConfig, "{}", spec.error().message());
    if (!spec->path.empty()) spec->path = Resolve(base_dir, spec->path);
    return *spec;
  };
  for (const auto& [key, value] : root.items()) {
    if (key == "kernel") {
      config.kernel = TRY(path(value, key));
    } else if (key == "initrd") {
      if (value.is_string()) {
        config.initrds.push_back(TRY(path(value, key)));
      } else if (value.is_array()) {
        for (size_t i = 0; i < value.size(); ++i) {
          if (!value[i].is_string()) return bad(key, "a path string or an array of path strings");
          config.initrds.push_back(TRY(path(value[i], fmt::format("{}[{}]", key, i))));
        }
      } else {
        return bad(key, "a path string or an array of path strings");
      }
    } else if (key == "cmdline") {
      config.cmdline = TRY(json::GetString(value, origin, key));
    } else if (key == "memory") {
      if (value.is_string()) {
        auto size = base::ParseSize(value.get<std::string>());
        if (!size)
          return base::MakeError(base::ErrorKind::kConfig, "{}: field 'memory': {}", origin,
                                 size.error().message());
        config.memory = *size;
      } else if (value.is_number_unsigned()) {
        config.memory = value.get<uint64_t>();
      } else {
        return bad(key, "a size such as \"512M\" or a number of bytes");
      }
    } else if (key == "cpus") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() < 1 ||
          value.get<uint64_t>() > kMaxCpus) {
        return bad(key, fmt::format("an integer 1..{} (not {})", kMaxCpus, value.dump()));
      }
      config.cpus = value.get<uint32_t>();
    } else if (key == "serial") {
      config.serial = TRY(backend(value, key));
    } else if (key == "console") {
      config.console = TRY(backend(value, key));
    } else if (key == "disks") {
      if (!value.is_array()) return bad(key, "an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const Json& item = value[i];
        const std::string field = fmt::format("disks[{}]", i);
        DiskConfig disk;
        if (item.is_string()) {
          std::string spec = TRY(json::GetPath(item, origin, field));
          auto parsed = ParseDiskSpec(spec);
          if (!parsed)
            return base::MakeError(base::ErrorKind::kConfig, "{}: field '{}': {}", origin, field,
                                   parsed.error().message());
          disk = *parsed;
        } else if (item.is_object()) {
          for (const auto& [disk_key, disk_value] : item.items()) {
            if (disk_key == "path" && disk_value.is_string()) {
              disk.path = TRY(json::GetPath(disk_value, origin, field + ".path"));
            } else if (disk_key == "read_only" && disk_value.is_boolean()) {
              disk.read_only = disk_value.get<bool>();
            } else {
              return base::MakeError(base::ErrorKind::kConfig,
                                     "{}: field '{}.{}' is unknown or has the wrong type "
                                     "(expected path: string, read_only: bool)",
                                     origin, field, disk_key);
            }
          }
          if (disk.path.empty()) {
            return base::MakeError(base::ErrorKind::kConfig, "{}: field '{}.path' is missing",
                                   origin, field);
          }
        } else {
          return bad(field, "\"PATH[,ro]\" or {\"path\":..., \"read_only\":...}");
        }
        disk.path = Resolve(base_dir, disk.path);
        config.disks.push_back(disk);
      }
    } else if (key == "rng") {
      config.rng = TRY(json::GetBool(value, origin, key));
    } else if (key == "api_sock") {
      config.api_sock = TRY(path(value, key));
    } else if (key == "timeout") {
      const double seconds = TRY(json::GetNumber(value, origin, key));
      TRY(CheckTimeout(seconds, base::ErrorKind::kConfig,
                       fmt::format("{}: field 'timeout'", origin)));
      config.timeout_seconds = seconds;
    } else if (key == "boot_trace") {
      config.boot_trace = TRY(json::GetBool(value, origin, key));
    } else if (key == "log_level") {
      config.log_level = TRY(json::GetString(value, origin, key));
    } else if (key == "boot_protocol") {
      auto protocol = firmware::ParseBootProtocol(TRY(json::GetString(value, origin, key)));
      if (!protocol)
        return std::unexpected(json::FieldError(origin, key, protocol.error().message()));
      config.boot_protocol = *protocol;
    } else if (key == "cpu_template") {
      auto cpu_template = ParseCpuTemplate(TRY(json::GetString(value, origin, key)));
      if (!cpu_template)
        return std::unexpected(json::FieldError(origin, key, cpu_template.error().message()));
      config.cpu_template = *cpu_template;
    } else if (key == "debugcon") {
      auto spec = devices::ParseDebugconSpec(TRY(json::GetString(value, origin, key)));
      if (!spec) return std::unexpected(json::FieldError(origin, key, spec.error().message()));
      config.debugcon = *spec;
      if (config.debugcon.kind == devices::DebugconSpec::Kind::kFile) {
        config.debugcon.path = Resolve(base_dir, config.debugcon.path);
      }
    } else if (key == "exit_code") {
      auto mode = ParseExitCodeMode(TRY(json::GetString(value, origin, key)));
      if (!mode) return std::unexpected(json::FieldError(origin, key, mode.error().message()));
      config.exit_code = *mode;
    } else if (key == "acpi") {
      config.acpi = TRY(json::GetBool(value, origin, key));
    } else if (key == "framebuffer") {
      auto spec = ParseFramebufferSpec(TRY(json::GetString(value, origin, key)));
      if (!spec) return std::unexpected(json::FieldError(origin, key, spec.error().message()));
      config.framebuffer = *spec;
    } else if (key == "screenshot") {
      config.screenshot = TRY(path(value, key));
    } else if (key == "vnc") {
      auto spec = ParseVncSpec(TRY(json::GetString(value, origin, key)), key);
      if (!spec) return std::unexpected(json::FieldError(origin, key, spec.error().message()));
      config.vnc = *spec;
      if (config.vnc.kind == VncSpec::Kind::kUnix) {
        config.vnc.path = Resolve(base_dir, config.vnc.path);
      }
    } else if (key == "seccomp") {
      auto mode = base::sandbox::ParseSeccompMode(TRY(json::GetString(value, origin, key)), key);
      if (!mode) return std::unexpected(json::FieldError(origin, key, mode.error().message()));
      config.seccomp = *mode;
    } else {
      return base::MakeError(base::ErrorKind::kConfig, "{}: unknown field '{}'", origin, key);
    }
  }
  return config;
}

base::Result<FramebufferSpec> ParseFramebufferSpec(std::string_view value) {
  FramebufferSpec spec;
  if (value == "auto") return spec;
  if (value == "off") {
    spec.kind = FramebufferSpec::Kind::kOff;
    return spec;
  }
  const size_t x = value.find('x');
  uint64_t width = 0, height = 0;
  auto number = [](std::string_view text, uint64_t& out) {
    if (text.empty() || text.size() > 6) return false;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  if (x == std::string_view::npos || !number(value.substr(0, x), width) ||
      !number(value.substr(x + 1), height)) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--framebuffer '{}': expected WxH (e.g. 1024x768), auto or off", value);
  }
  if (width == 0 || height == 0 || width > base::kFramebufferMaxSide ||
      height > base::kFramebufferMaxSide || width * height * 4 > base::kFramebufferMaxBytes) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--framebuffer {}x{}: each side must be 1..{} and the screen at most "
                           "{} MiB of 32-bit pixels (it lives in the MMIO hole at {:#x})",
                           width, height, base::kFramebufferMaxSide,
                           base::kFramebufferMaxBytes >> 20, base::kFramebufferBase);
  }
  spec.kind = FramebufferSpec::Kind::kOn;
  spec.width = static_cast<uint32_t>(width);
  spec.height = static_cast<uint32_t>(height);
  return spec;
}

base::Result<bool> ParseOnOff(std::string_view value, std::string_view flag) {
  if (value == "on") return true;
  if (value == "off") return false;
  return base::MakeError(base::ErrorKind::kUsage, "{} '{}': expected on or off", flag, value);
}

base::Result<ExitCodeMode> ParseExitCodeMode(std::string_view name) {
  if (name == "vmm") return ExitCodeMode::kVmm;
  if (name == "qemu") return ExitCodeMode::kQemu;
  return base::MakeError(base::ErrorKind::kUsage, "--exit-code '{}': expected vmm or qemu", name);
}

base::Result<VmConfig> LoadConfigFile(const std::string& path) {
  std::string text = TRY(json::ReadJsonFile(path, "config file"));
  std::string base_dir = std::filesystem::absolute(path).parent_path().string();
  return ParseConfig(text, base_dir, path);
}

base::Result<void> ValidateConfig(const VmConfig& config) {
  if (config.memory < 2 * base::MiB) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "memory {} bytes is too small (at least 2 MiB)", config.memory);
  }
  if (config.memory % (4 * base::KiB) != 0) {
    return base::MakeError(base::ErrorKind::kConfig, "memory {} bytes is not a multiple of 4 KiB",
                           config.memory);
  }
  if (config.memory > 1024 * base::GiB) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "memory {} GiB is more than vmm supports (1 TiB)",
                           config.memory / base::GiB);
  }
  if (config.cpus == 0) return base::MakeError(base::ErrorKind::kConfig, "cpus must be at least 1");
  if (config.cpus > kMaxCpus) {
    return base::MakeError(base::ErrorKind::kConfig, "cpus {}: at most {} vCPUs are supported",
                           config.cpus, kMaxCpus);
  }
  TRY(CheckTimeout(config.timeout_seconds, base::ErrorKind::kConfig, "timeout"));
  if (config.serial.kind == SerialSpec::Kind::kStdio &&
      config.console.kind == SerialSpec::Kind::kStdio) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--serial and --console both use stdio; only one of them may (e.g. "
                           "--serial none --console stdio, or --console file:PATH)");
  }
  return {};
}

}  // namespace vmm
