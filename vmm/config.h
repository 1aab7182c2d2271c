// A VM's configuration: what `--config FILE` (JSON) and the command-line
// flags describe (design.md, "Command line"). Flags override the file;
// relative paths in the file resolve against the file's own folder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace vmm {

struct DiskConfig {
  std::string path;
  bool read_only = false;
};

struct VmConfig {
  std::string kernel;
  std::vector<std::string> initrds;
  std::string cmdline;
  uint64_t memory = 128ull << 20;  // bytes; Firecracker's default
  uint32_t cpus = 1;
  std::string serial = "stdio";  // stdio | file:PATH | socket:PATH | none
  std::vector<DiskConfig> disks;
  bool rng = false;
  // virtio-console backend, same syntax as serial; "none": no device.
  std::string console = "none";
  std::string api_sock;
  double timeout_seconds = 0;  // 0: none
  bool boot_trace = false;
  std::string log_level = "warn";
  std::string boot_protocol = "auto";
  std::string cpu_template = "auto";
  std::string debugcon = "none";  // port 0xe9: stdio | file:PATH | none
  std::string exit_code = "vmm";  // vmm | qemu ((v << 1) | 1, as isa-debug-exit)
};

// The JSON fields a config file may hold; anything else is an error.
// {"kernel": "...", "initrd": "..." | [...], "cmdline": "...", "memory": "512M" | bytes,
//  "cpus": 1, "serial": "stdio", "disks": ["img", {"path": "img", "read_only": true}],
//  "rng": false, "console": "none", "api_sock": "...", "timeout": seconds, "boot_trace": false,
//  "log_level": "info", "boot_protocol": "auto", "cpu_template": "auto", "debugcon": "none",
//  "exit_code": "vmm"}
//
// Errors: kNoInput (66) when the file cannot be read; kConfig (78) naming the
// file and the field for everything else.
[[nodiscard]] base::Result<VmConfig> LoadConfigFile(const std::string& path);

// Same, from JSON text; `base_dir` resolves relative paths, `origin` names
// the source in messages.
[[nodiscard]] base::Result<VmConfig> ParseConfig(std::string_view json_text,
                                                 const std::string& base_dir,
                                                 const std::string& origin);

// "PATH[,ro]" as --disk takes it.
[[nodiscard]] base::Result<DiskConfig> ParseDiskSpec(std::string_view spec);

// Checks ranges that do not depend on files: memory (>= 2 MiB, 4 KiB
// aligned, < 1 TiB), cpus (1..kMaxCpus), timeout >= 0: kConfig on failure.
// Also that serial and console are valid backends and do not both use
// stdio: kUsage (64) naming both.
[[nodiscard]] base::Result<void> ValidateConfig(const VmConfig& config);

// vCPUs: the MP table's limit (APIC IDs 0..cpus-1, the IOAPIC takes the next
// ID, 255 is broadcast).
inline constexpr uint32_t kMaxCpus = 254;

}  // namespace vmm
