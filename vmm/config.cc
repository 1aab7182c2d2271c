#include "vmm/config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/guest_memory.h"
#include "vmm/console/console.h"

namespace vmm {
namespace {

using nlohmann::json;

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

base::Result<VmConfig> ParseConfig(std::string_view json_text, const std::string& base_dir,
                                   const std::string& origin) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (root.is_discarded()) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: not valid JSON", origin);
  }
  if (!root.is_object()) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: the top level must be a JSON object",
                           origin);
  }
  VmConfig config;
  auto bad = [&](const std::string& field, std::string_view expected) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: field '{}' must be {}", origin, field,
                           expected);
  };
  for (const auto& [key, value] : root.items()) {
    if (key == "kernel") {
      if (!value.is_string()) return bad(key, "a path string");
      config.kernel = Resolve(base_dir, value.get<std::string>());
    } else if (key == "initrd") {
      if (value.is_string()) {
        config.initrds.push_back(Resolve(base_dir, value.get<std::string>()));
      } else if (value.is_array()) {
        for (const auto& item : value) {
          if (!item.is_string()) return bad(key, "a path string or an array of path strings");
          config.initrds.push_back(Resolve(base_dir, item.get<std::string>()));
        }
      } else {
        return bad(key, "a path string or an array of path strings");
      }
    } else if (key == "cmdline") {
      if (!value.is_string()) return bad(key, "a string");
      config.cmdline = value.get<std::string>();
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
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 4096) {
        return bad(key, "a positive integer");
      }
      config.cpus = value.get<uint32_t>();
    } else if (key == "serial") {
      if (!value.is_string())
        return bad(key, "\"stdio\", \"file:PATH\", \"socket:PATH\" or \"none\"");
      std::string serial = value.get<std::string>();
      for (std::string_view prefix : {"file:", "socket:"}) {
        if (serial.starts_with(prefix)) {
          serial = std::string(prefix) + Resolve(base_dir, serial.substr(prefix.size()));
        }
      }
      config.serial = serial;
    } else if (key == "console") {
      if (!value.is_string())
        return bad(key, "\"stdio\", \"file:PATH\", \"socket:PATH\" or \"none\"");
      std::string console = value.get<std::string>();
      for (std::string_view prefix : {"file:", "socket:"}) {
        if (console.starts_with(prefix)) {
          console = std::string(prefix) + Resolve(base_dir, console.substr(prefix.size()));
        }
      }
      config.console = console;
    } else if (key == "disks") {
      if (!value.is_array()) return bad(key, "an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        DiskConfig disk;
        if (item.is_string()) {
          auto parsed = ParseDiskSpec(item.get<std::string>());
          if (!parsed)
            return base::MakeError(base::ErrorKind::kConfig, "{}: field 'disks[{}]': {}", origin, i,
                                   parsed.error().message());
          disk = *parsed;
        } else if (item.is_object()) {
          for (const auto& [disk_key, disk_value] : item.items()) {
            if (disk_key == "path" && disk_value.is_string()) {
              disk.path = disk_value.get<std::string>();
            } else if (disk_key == "read_only" && disk_value.is_boolean()) {
              disk.read_only = disk_value.get<bool>();
            } else {
              return base::MakeError(base::ErrorKind::kConfig,
                                     "{}: field 'disks[{}].{}' is unknown or has the wrong type "
                                     "(expected path: string, read_only: bool)",
                                     origin, i, disk_key);
            }
          }
          if (disk.path.empty()) {
            return base::MakeError(base::ErrorKind::kConfig,
                                   "{}: field 'disks[{}].path' is missing", origin, i);
          }
        } else {
          return bad(fmt::format("disks[{}]", i),
                     "\"PATH[,ro]\" or {\"path\":..., \"read_only\":...}");
        }
        disk.path = Resolve(base_dir, disk.path);
        config.disks.push_back(disk);
      }
    } else if (key == "rng") {
      if (!value.is_boolean()) return bad(key, "true or false");
      config.rng = value.get<bool>();
    } else if (key == "api_sock") {
      if (!value.is_string()) return bad(key, "a path string");
      config.api_sock = Resolve(base_dir, value.get<std::string>());
    } else if (key == "timeout") {
      if (!value.is_number() || value.get<double>() < 0)
        return bad(key, "a number of seconds >= 0");
      config.timeout_seconds = value.get<double>();
    } else if (key == "boot_trace") {
      if (!value.is_boolean()) return bad(key, "true or false");
      config.boot_trace = value.get<bool>();
    } else if (key == "log_level") {
      if (!value.is_string()) return bad(key, "a level name");
      config.log_level = value.get<std::string>();
    } else if (key == "boot_protocol") {
      if (!value.is_string()) return bad(key, "auto, elf64, pvh, bzimage or multiboot");
      config.boot_protocol = value.get<std::string>();
    } else if (key == "cpu_template") {
      if (!value.is_string()) return bad(key, "auto, host or emulated");
      config.cpu_template = value.get<std::string>();
    } else if (key == "debugcon") {
      if (!value.is_string()) return bad(key, "\"stdio\", \"file:PATH\" or \"none\"");
      config.debugcon = value.get<std::string>();
      if (config.debugcon.starts_with("file:")) {
        config.debugcon = "file:" + Resolve(base_dir, config.debugcon.substr(5));
      }
    } else if (key == "exit_code") {
      if (!value.is_string()) return bad(key, "\"vmm\" or \"qemu\"");
      config.exit_code = value.get<std::string>();
    } else {
      return base::MakeError(base::ErrorKind::kConfig, "{}: unknown field '{}'", origin, key);
    }
  }
  return config;
}

base::Result<VmConfig> LoadConfigFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return base::MakeErrnoError(base::ErrorKind::kNoInput, "config file {}", path);
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad())
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "config file {}: read error", path);
  std::string base_dir = std::filesystem::absolute(path).parent_path().string();
  return ParseConfig(text.str(), base_dir, path);
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
  if (config.timeout_seconds < 0) {
    return base::MakeError(base::ErrorKind::kConfig, "timeout must be >= 0 seconds");
  }
  if (config.exit_code != "vmm" && config.exit_code != "qemu") {
    return base::MakeError(base::ErrorKind::kUsage, "--exit-code '{}': expected vmm or qemu",
                           config.exit_code);
  }
  auto serial = ParseSerialSpec(config.serial);
  if (!serial) return std::unexpected(serial.error().WithContext("--serial"));
  auto console = ParseSerialSpec(config.console);
  if (!console) return std::unexpected(console.error().WithContext("--console"));
  if (serial->kind == SerialSpec::Kind::kStdio && console->kind == SerialSpec::Kind::kStdio) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--serial and --console both use stdio; only one of them may (e.g. "
                           "--serial none --console stdio, or --console file:PATH)");
  }
  return {};
}

}  // namespace vmm
