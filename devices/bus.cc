#include "devices/bus.h"

namespace devices {

base::Result<void> Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length) {
  const std::string_view dev_name = device ? device->name() : std::string_view("(null)");
  if (!device) {
    return base::MakeError(base::ErrorKind::kInternal, "{} bus: null device at {:#x}", name_, base);
  }
  if (length == 0) {
    return base::MakeError(base::ErrorKind::kInternal, "{} bus: {} at {:#x} has zero length", name_,
                           dev_name, base);
  }
  if (base + (length - 1) < base) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "{} bus: {} range {:#x}+{:#x} wraps past the end of the address space",
                           name_, dev_name, base, length);
  }
  const uint64_t last = base + (length - 1);
  // The first range starting after `base`, and the one before it.
  auto next = ranges_.upper_bound(base);
  if (next != ranges_.end() && next->first <= last) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "{} bus: {} [{:#x}, {:#x}] overlaps {} at {:#x}", name_, dev_name, base,
                           last, next->second.device->name(), next->first);
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    const uint64_t prev_last = prev->first + (prev->second.length - 1);
    if (prev_last >= base) {
      return base::MakeError(
          base::ErrorKind::kInternal, "{} bus: {} [{:#x}, {:#x}] overlaps {} [{:#x}, {:#x}]", name_,
          dev_name, base, last, prev->second.device->name(), prev->first, prev_last);
    }
  }
  ranges_.emplace(base, Entry{base, length, std::move(device)});
  return {};
}

const Bus::Entry* Bus::Find(uint64_t address) const {
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return nullptr;
  --it;
  const Entry& entry = it->second;
  if (address - entry.base > entry.length - 1) return nullptr;
  return &entry;
}

bool Bus::Read(uint64_t address, std::span<uint8_t> data, uint32_t vcpu) const {
  const Entry* entry = Find(address);
  if (entry == nullptr) return false;
  entry->device->Read(BusAccess{address, address - entry->base, vcpu}, data);
  return true;
}

bool Bus::Write(uint64_t address, std::span<const uint8_t> data, uint32_t vcpu) const {
  const Entry* entry = Find(address);
  if (entry == nullptr) return false;
  entry->device->Write(BusAccess{address, address - entry->base, vcpu}, data);
  return true;
}

}  // namespace devices
