// A VM's configuration: what `--config FILE` (JSON) and the command-line
// flags describe (docs/architecture.md, "Command line"). Flags override the file;
// relative paths in the file resolve against the file's own folder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/layout.h"
#include "base/sandbox/seccomp.h"
#include "devices/legacy/debugcon.h"
#include "firmware/boot.h"
#include "vmm/console/serial_spec.h"
#include "vmm/cpu_template.h"
#include "vmm/vnc/spec.h"

namespace vmm {

// --exit-code: what a write of v to the exit port ends vmm with.
enum class ExitCodeMode {
  kVmm,   // v itself (0..63; larger values end with 63)
  kQemu,  // (v << 1) | 1, as QEMU's isa-debug-exit
};
// --acpi: "on" or "off"; kUsage naming the value otherwise.
[[nodiscard]] base::Result<bool> ParseOnOff(std::string_view value, std::string_view flag);

// "vmm" or "qemu"; kUsage naming the value otherwise.
[[nodiscard]] base::Result<ExitCodeMode> ParseExitCodeMode(std::string_view name);

// --framebuffer: auto (default: the default size when the kernel asks for one
// through its protocol), WxH (always, every protocol, Linux's screen_info
// too), off (never).
struct FramebufferSpec {
  enum class Kind { kAuto, kOn, kOff };
  Kind kind = Kind::kAuto;
  uint32_t width = base::kFramebufferDefaultWidth;
  uint32_t height = base::kFramebufferDefaultHeight;
};
// "auto", "off" or "WxH" (each side 1..kFramebufferMaxSide, at most
// kFramebufferMaxBytes of 32-bit pixels); kUsage naming the value otherwise.
[[nodiscard]] base::Result<FramebufferSpec> ParseFramebufferSpec(std::string_view value);

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
  SerialSpec serial{SerialSpec::Kind::kStdio, ""};
  std::vector<DiskConfig> disks;
  bool rng = false;
  // virtio-console backend, same syntax as serial; kNone: no device.
  SerialSpec console{SerialSpec::Kind::kNone, ""};
  std::string api_sock;
  double timeout_seconds = 0;  // 0: none; else finite, <= kMaxTimeoutSeconds
  bool boot_trace = false;
  std::string log_level = "warn";
  firmware::BootProtocol boot_protocol = firmware::BootProtocol::kAuto;
  CpuTemplate cpu_template = CpuTemplate::kAuto;
  devices::DebugconSpec debugcon;  // port 0xe9: stdio | file:PATH | none (default)
  ExitCodeMode exit_code = ExitCodeMode::kVmm;
  // ACPI tables for the guest (docs/acpi.md); --acpi off leaves only the MP
  // table.
  bool acpi = true;
  FramebufferSpec framebuffer;  // docs/framebuffer.md
  std::string screenshot;       // --screenshot: a PNG of the screen when the guest ends
  VncSpec vnc;                  // --vnc: the live view (docs/framebuffer.md)
  // Per-thread seccomp filters (docs/security.md, "seccomp").
  base::sandbox::SeccompMode seccomp = base::sandbox::SeccompMode::kKill;
};

// The JSON fields a config file may hold; anything else is an error.
// {"kernel": "...", "initrd": "..." | [...], "cmdline": "...", "memory": "512M" | bytes,
//  "cpus": 1, "serial": "stdio", "disks": ["img", {"path": "img", "read_only": true}],
//  "rng": false, "console": "none", "api_sock": "...", "timeout": seconds, "boot_trace": false,
//  "log_level": "info", "boot_protocol": "auto", "cpu_template": "auto", "debugcon": "none",
//  "exit_code": "vmm", "acpi": true, "seccomp": "kill", "framebuffer": "auto",
//  "screenshot": "...", "vnc": ":1" | "unix:PATH" | "off"}
//
// Every value is checked here, once: serial/console, boot_protocol and
// cpu_template arrive typed, path strings hold no NUL, timeout is in range.
// Errors: kNoInput (66) when the file cannot be read; kConfig (78) naming the
// file (and the field) for everything else, a file that is not regular or is
// larger than 1 MiB (json::kMaxJsonFileBytes) included.
[[nodiscard]] base::Result<VmConfig> LoadConfigFile(const std::string& path);

// Same, from JSON text; `base_dir` resolves relative paths, `origin` names
// the source in messages.
[[nodiscard]] base::Result<VmConfig> ParseConfig(std::string_view json_text,
                                                 const std::string& base_dir,
                                                 const std::string& origin);

// "PATH[,ro]" as --disk takes it.
[[nodiscard]] base::Result<DiskConfig> ParseDiskSpec(std::string_view spec);

// Checks ranges that do not depend on files: memory (>= 2 MiB, 4 KiB
// aligned, < 1 TiB), cpus (1..kMaxCpus), timeout (CheckTimeout): kConfig on
// failure. Also that serial and console do not both use stdio: kUsage (64)
// naming both.
[[nodiscard]] base::Result<void> ValidateConfig(const VmConfig& config);

// vCPUs: the MP table's limit (base/layout.h says why it is 254).
inline constexpr uint32_t kMaxCpus = base::kMaxCpus;

// The longest timeout. The steady clock counts nanoseconds in a signed 64-bit
// integer (about 292 years); 1e9 s (about 31.7 years) converts with room to
// spare, where 1e19 s would overflow into a timeout that fires at once.
inline constexpr double kMaxTimeoutSeconds = 1e9;

// `seconds` must be finite and in 0..kMaxTimeoutSeconds (NaN, infinities and
// negative values are refused). Otherwise an error of `kind`:
// "NAME: VALUE is not a number of seconds in 0..1000000000 (0: no timeout)".
[[nodiscard]] base::Result<void> CheckTimeout(double seconds, base::ErrorKind kind,
                                              std::string_view name);

}  // namespace vmm
