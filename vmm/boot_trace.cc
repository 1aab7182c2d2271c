#include "vmm/boot_trace.h"

#include <atomic>
#include <chrono>
#include <cstdio>

namespace vmm::boot_trace {
namespace {

const std::chrono::steady_clock::time_point kStart = std::chrono::steady_clock::now();
std::atomic<bool> g_enabled{false};

}  // namespace

void Enable(bool enabled) { g_enabled.store(enabled); }
bool enabled() { return g_enabled.load(); }

double ElapsedMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - kStart)
      .count();
}

void Mark(std::string_view event) {
  if (!g_enabled.load(std::memory_order_relaxed)) return;
  // One fprintf call per line: stdio locks the stream, so lines never interleave.
  std::fprintf(stderr, "boot-trace: %.*s %.3f ms\n", static_cast<int>(event.size()), event.data(),
               ElapsedMs());
}

}  // namespace vmm::boot_trace
