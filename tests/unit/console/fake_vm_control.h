// A VmControl that records calls, for the API tests.
#pragma once

#include <string>
#include <vector>

#include "vmm/api/vm_control.h"

namespace vmm::testing_support {

class FakeVmControl : public VmControl {
 public:
  nlohmann::json Info() override {
    return {{"state", paused ? "Paused" : "Running"},
            {"vcpus", 2},
            {"memory_bytes", 128 << 20},
            {"uptime_seconds", 1.5},
            {"exits", {{"io", 10}, {"hlt", 3}}},
            {"serial", {{"bytes_in", 4}, {"bytes_out", 100}}}};
  }
  base::Result<void> Pause() override {
    calls.push_back("Pause");
    paused = true;
    return {};
  }
  base::Result<void> Resume() override {
    calls.push_back("Resume");
    paused = false;
    return {};
  }
  base::Result<void> Shutdown() override {
    calls.push_back("Shutdown");
    if (fail_shutdown) return base::MakeError(base::ErrorKind::kInternal, "cannot stop");
    return {};
  }
  base::Result<void> Reset() override {
    calls.push_back("Reset");
    return {};
  }
  base::Result<void> SendCtrlAltDel() override {
    calls.push_back("SendCtrlAltDel");
    return base::MakeError(base::ErrorKind::kUsage, "no i8042 keyboard");
  }
  nlohmann::json Metrics() override { return {{"exits_total", 13}}; }
  base::Result<std::vector<uint8_t>> ScreenshotPng() override {
    calls.push_back("ScreenshotPng");
    if (!has_framebuffer) return base::MakeError(base::ErrorKind::kConfig, "no framebuffer");
    return std::vector<uint8_t>{0x89, 'P', 'N', 'G', 0, 1, 2};
  }

  std::vector<std::string> calls;
  bool paused = false;
  bool fail_shutdown = false;
  bool has_framebuffer = true;
};

}  // namespace vmm::testing_support
