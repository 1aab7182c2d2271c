#include "vmm/metrics.h"

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

namespace vmm {
namespace {

// VmHWM from /proc/self/status: the process's peak resident set.
uint64_t PeakRssKiB() {
  FILE* status = std::fopen("/proc/self/status", "re");
  if (status == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lu kB", &kib) == 1) break;
  }
  std::fclose(status);
  return kib;
}

// Guest RAM pages resident in host memory (mincore), i.e. what the guest
// touched: the part of the RSS that is the guest's, not vmm's.
uint64_t GuestResidentKiB(const base::GuestMemory& memory) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint64_t resident = 0;
  std::vector<unsigned char> pages;
  for (const auto& region : memory.regions()) {
    pages.resize((region.size + page - 1) / page);
    if (mincore(region.host, region.size, pages.data()) != 0) continue;
    for (unsigned char p : pages) resident += p & 1;
  }
  return resident * page / 1024;
}

nlohmann::json VirtioToJson(const VirtioDeviceMetrics& device) {
  nlohmann::json entry = {{"index", device.index},
                          {"type", device.type},
                          {"mmio_base", fmt::format("{:#x}", device.mmio_base)},
                          {"irq", device.irq}};
  if (device.transport) {
    const auto& stats = *device.transport;
    entry["notifications"] = stats.notifications;
    entry["interrupts"] = stats.interrupts;
    entry["interrupts_suppressed"] = stats.interrupts_suppressed;
    entry["guest_errors"] = stats.guest_errors;
    entry["rejected_chains"] = stats.rejected_chains;
    entry["stale_completions"] = stats.stale_completions;
    entry["resets"] = stats.resets;
    entry["needs_reset"] = stats.needs_reset;
    entry["status"] = stats.status;
  }
  const auto& counters = device.counters;
  entry["requests"] = counters.requests;
  entry["bytes_read"] = counters.bytes_read;
  entry["bytes_written"] = counters.bytes_written;
  entry["errors"] = counters.errors;
  for (const auto& [name, value] : counters.extra) entry[name] = value;
  return entry;
}

}  // namespace

void ReadExitCounters(const ExitCounters& counters, VmMetrics& metrics) {
  metrics.exits_io = counters.io.load(std::memory_order_relaxed);
  metrics.exits_mmio = counters.mmio.load(std::memory_order_relaxed);
  metrics.exits_other = counters.other.load(std::memory_order_relaxed);
  metrics.unclaimed_pio = counters.unclaimed_pio.load(std::memory_order_relaxed);
  metrics.unclaimed_mmio = counters.unclaimed_mmio.load(std::memory_order_relaxed);
}

nlohmann::json MetricsToJson(const VmMetrics& metrics) {
  nlohmann::json virtio = nlohmann::json::array();
  for (const auto& device : metrics.virtio) virtio.push_back(VirtioToJson(device));
  nlohmann::json vm = {{"exits_io", metrics.exits_io},
                       {"exits_mmio", metrics.exits_mmio},
                       {"exits_other", metrics.exits_other},
                       {"unclaimed_pio", metrics.unclaimed_pio},
                       {"unclaimed_mmio", metrics.unclaimed_mmio}};
  if (metrics.memory) {
    vm["peak_rss_kib"] = metrics.memory->peak_rss_kib;
    vm["guest_resident_kib"] = metrics.memory->guest_resident_kib;
  }
  const ConsoleStats& serial = metrics.serial;
  return nlohmann::json{
      {"vm", std::move(vm)},
      {"serial",
       {{"bytes_out", serial.bytes_out},
        {"bytes_in", serial.bytes_in},
        {"bytes_dropped", serial.bytes_dropped},
        {"clients", serial.clients},
        {"clients_total", serial.clients_total}}},
      {"virtio", std::move(virtio)},
  };
}

void LogExitSummary(const VmMetrics& metrics) {
  if (spdlog::should_log(spdlog::level::info)) {
    if (metrics.memory) {
      spdlog::info("memory: peak RSS {} KiB, guest RAM resident {} KiB",
                   metrics.memory->peak_rss_kib, metrics.memory->guest_resident_kib);
    }
    for (const auto& device : metrics.virtio) {
      const devices::virtio::VirtioMmio::Stats stats =
          device.transport.value_or(devices::virtio::VirtioMmio::Stats{});
      spdlog::info(
          "virtio {} {} (irq {}): notifications {} requests {} bytes_read {} bytes_written {} "
          "interrupts {} suppressed {} errors {} rejected_chains {} guest_errors {} needs_reset {}",
          device.index, device.type, device.irq, stats.notifications, device.counters.requests,
          device.counters.bytes_read, device.counters.bytes_written, stats.interrupts,
          stats.interrupts_suppressed, device.counters.errors, stats.rejected_chains,
          stats.guest_errors, stats.needs_reset);
    }
  }
  spdlog::debug("exits: io {} mmio {} other {}; unclaimed pio {} mmio {}", metrics.exits_io,
                metrics.exits_mmio, metrics.exits_other, metrics.unclaimed_pio,
                metrics.unclaimed_mmio);
}

MemoryUsage ReadMemoryUsage(const base::GuestMemory& memory) {
  return MemoryUsage{PeakRssKiB(), GuestResidentKiB(memory)};
}

}  // namespace vmm
