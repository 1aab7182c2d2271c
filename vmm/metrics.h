// The VM's counters: live exit counters (ExitCounters, bumped by the vCPU
// threads) and a plain snapshot of everything (VmMetrics), which is turned
// into the GET /metrics JSON by MetricsToJson() and into the exit summary
// log lines by LogExitSummary() (docs/api.md, "GET /metrics").
// ExitCounters: any thread (relaxed atomics). VmMetrics: a value type.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "vmm/console/console.h"

namespace vmm {

// KVM exits by reason and accesses no device claimed. Owned by the Vm.
struct ExitCounters {
  std::atomic<uint64_t> io{0}, mmio{0}, other{0};
  std::atomic<uint64_t> unclaimed_pio{0}, unclaimed_mmio{0};
};

// One virtio-mmio device's counters.
struct VirtioDeviceMetrics {
  size_t index = 0;
  std::string type;  // "block", "rng", "console"
  uint64_t mmio_base = 0;
  uint32_t irq = 0;
  std::optional<devices::virtio::VirtioMmio::Stats> transport;  // once wired
  devices::virtio::DeviceCounters counters;
};

// Host memory use, for the exit summary.
struct MemoryUsage {
  uint64_t peak_rss_kib = 0;        // VmHWM
  uint64_t guest_resident_kib = 0;  // guest RAM pages resident (mincore)
};

struct VmMetrics {
  uint64_t exits_io = 0, exits_mmio = 0, exits_other = 0;
  uint64_t unclaimed_pio = 0, unclaimed_mmio = 0;
  ConsoleStats serial;
  std::vector<VirtioDeviceMetrics> virtio;
  std::optional<MemoryUsage> memory;  // filled for the exit summary only
};

// Copies the live counters into `metrics`.
void ReadExitCounters(const ExitCounters& counters, VmMetrics& metrics);

// The one JSON form of the metrics (GET /metrics).
nlohmann::json MetricsToJson(const VmMetrics& metrics);

// The summary logged when the VM ends: memory and virtio lines at info, the
// exit counters at debug.
void LogExitSummary(const VmMetrics& metrics);

// The process's peak RSS and the guest RAM it has touched.
MemoryUsage ReadMemoryUsage(const base::GuestMemory& memory);

}  // namespace vmm
