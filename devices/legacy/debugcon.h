// The Bochs/QEMU debug console (QEMU -debugcon): port 0xE9 (base/layout.h
// kDebugconPort), one byte per write, no setup (docs/boot-protocols.md,
// "Debug console"). Hobby kernels print to it before they have a serial
// driver.
//
// Every byte written goes to the sink (stdout or a file); a read returns
// 0xE9, which is how guests detect the port (as Bochs's port_e9_hack and
// QEMU's debugcon do). Writes come from vCPU threads; the sink is written
// with one write(2) per access, so output from several vCPUs interleaves by
// access, never inside one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"
#include "devices/bus.h"

namespace devices {

// Where the debug console's bytes go: parsed once from "stdio", "file:PATH"
// or "none" (ParseDebugconSpec), at the command line or config boundary.
struct DebugconSpec {
  enum class Kind { kNone, kStdio, kFile };
  Kind kind = Kind::kNone;
  std::string path;  // kFile only
  bool operator==(const DebugconSpec&) const = default;
};

class Debugcon : public BusDevice {
 public:
  static constexpr uint8_t kReadBack = 0xe9;

  // kStdio (stdout), kFile (created or truncated) or kNone (nullptr: no
  // device, the port reads as open bus). kConfig when the file cannot be
  // opened.
  [[nodiscard]] static base::Result<std::shared_ptr<Debugcon>> Create(const DebugconSpec& spec);

  // Output to `sink` (tests).
  explicit Debugcon(std::function<void(std::span<const uint8_t>)> sink);

  std::string_view name() const override { return "debugcon"; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  uint64_t bytes_out() const { return bytes_out_; }

 private:
  std::function<void(std::span<const uint8_t>)> sink_;
  uint64_t bytes_out_ = 0;
};

// Checks a --debugcon spec without opening anything (kUsage otherwise).
[[nodiscard]] base::Result<DebugconSpec> ParseDebugconSpec(std::string_view spec);

}  // namespace devices
