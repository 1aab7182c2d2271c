#include "devices/legacy/debug_exit.h"

#include <algorithm>

namespace devices {

DebugExit::DebugExit(std::function<void(uint32_t)> on_exit) : on_exit_(std::move(on_exit)) {}

void DebugExit::Read(const BusAccess&, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
}

void DebugExit::Write(const BusAccess& access, std::span<const uint8_t> data) {
  if (data.size() != 1 && data.size() != 2 && data.size() != 4) {
    log_.Warn("{}-byte write at offset {} ignored", data.size(), access.offset);
    return;
  }
  uint32_t value = 0;
  for (size_t i = 0; i < data.size(); ++i) value |= static_cast<uint32_t>(data[i]) << (8 * i);
  if (on_exit_) on_exit_(value);
}

}  // namespace devices
