// Guest physical memory: host mmap regions and the one bounds-checked accessor.
//
// Layout (docs/architecture.md, "Machine layout"; the numbers are in base/layout.h): RAM from
// guest-physical 0 up to min(size, 3 GiB); the 3–4 GiB range is a hole for MMIO; the remainder of
// the RAM lives from 4 GiB up. Every piece of host code that touches guest memory goes through
// Span/Read/Write here, so a guest-chosen address or length can never reach host memory outside
// guest RAM.
//
// Owned by the VM. The region table is immutable after Create(), so
// the accessors may be called from any thread without locking; concurrent
// access to the same bytes is the caller's (and the guest's) business.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/layout.h"

namespace base {

struct MemoryRegion {
  uint64_t guest_phys = 0;  // first guest-physical byte
  uint64_t size = 0;        // bytes
  uint8_t* host = nullptr;  // host address of guest_phys
};

class GuestMemory {
 public:
  // Maps `ram_size` bytes of anonymous memory (lazily zeroed by the host
  // kernel, MAP_NORESERVE) split around the MMIO hole. ram_size must be a
  // non-zero multiple of 4 KiB.
  [[nodiscard]] static Result<std::unique_ptr<GuestMemory>> Create(uint64_t ram_size);

  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  uint64_t ram_size() const { return ram_size_; }
  std::span<const MemoryRegion> regions() const { return regions_; }

  // True when [gpa, gpa + length) lies inside one RAM region (length 0: gpa
  // itself must be inside or at the end of a region). Overflow-safe.
  bool Contains(uint64_t gpa, uint64_t length) const;

  // Host view of guest range [gpa, gpa + length); fails (kInternal, naming the
  // range) unless the whole range is in one region.
  [[nodiscard]] Result<std::span<uint8_t>> Span(uint64_t gpa, uint64_t length) const;

  [[nodiscard]] Result<void> Read(uint64_t gpa, std::span<uint8_t> out) const;
  [[nodiscard]] Result<void> Write(uint64_t gpa, std::span<const uint8_t> data) const;
  [[nodiscard]] Result<void> Fill(uint64_t gpa, uint8_t value, uint64_t length) const;

  template <typename T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<T> ReadObj(uint64_t gpa) const {
    T value;
    TRY(Read(gpa, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
    return value;
  }

  template <typename T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> WriteObj(uint64_t gpa, const T& value) const {
    return Write(gpa, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  GuestMemory() = default;
  const MemoryRegion* Find(uint64_t gpa, uint64_t length) const;

  uint64_t ram_size_ = 0;
  std::vector<MemoryRegion> regions_;
};

// Parses "512", "64K", "512M", "2G" (binary units, case-insensitive; a bare
// number is bytes, as in docs/architecture.md "Sizes take K/M/G suffixes"). Fails with
// kUsage naming the text on garbage or overflow.
[[nodiscard]] Result<uint64_t> ParseSize(std::string_view text);

}  // namespace base
