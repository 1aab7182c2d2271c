// What the control API may ask of a VM. The VM (vmm/vm.h) implements it.
//
// Every method is called on the control thread (vmm/vm.h) by ApiServer and
// must return quickly: it may set flags, kick vCPUs out of KVM_RUN, or queue
// work, but never wait for the guest. Pause() alone waits, boundedly, for
// every vCPU to acknowledge that it is parked. (The vCPUs never wait for the
// API.)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/error.h"

namespace vmm {

class VmControl {
 public:
  virtual ~VmControl() = default;

  // GET /vm. A JSON object with at least:
  //   "state":          "Running" | "Paused" | "Stopping" (or "NotStarted")
  //   "vcpus":          number of vCPUs
  //   "memory_bytes":   guest RAM size
  //   "uptime_seconds": seconds since the vCPUs started (a number)
  //   "exits":          {"<reason>": count, ...}   KVM exits by reason
  //   "serial":         {"bytes_in": n, "bytes_out": n}
  // Extra fields are allowed; docs/openapi.yaml lists the schema.
  virtual nlohmann::json Info() = 0;

  // PUT /vm/state. Pausing a paused VM (or resuming a running one) is not an
  // error. Errors of kind kUsage/kConfig become 400, others 500.
  [[nodiscard]] virtual base::Result<void> Pause() = 0;
  [[nodiscard]] virtual base::Result<void> Resume() = 0;

  // PUT /actions. Shutdown: end vmm with status 0 (as a guest power-off).
  // Reset: as the guest's i8042 reset (vmm ends with status 0, docs/architecture.md).
  // SendCtrlAltDel: inject Ctrl-Alt-Del as the i8042 would see it.
  [[nodiscard]] virtual base::Result<void> Shutdown() = 0;
  [[nodiscard]] virtual base::Result<void> Reset() = 0;
  [[nodiscard]] virtual base::Result<void> SendCtrlAltDel() = 0;

  // GET /metrics: counters as a JSON object (the server adds an "api" member).
  virtual nlohmann::json Metrics() = 0;

  // GET /screenshot: the framebuffer now as a PNG (docs/framebuffer.md).
  // kConfig when the guest has no framebuffer (404); others 500. Encoding a
  // 1024x768 screen takes tens of milliseconds on the control thread.
  [[nodiscard]] virtual base::Result<std::vector<uint8_t>> ScreenshotPng() = 0;
};

}  // namespace vmm
