// Guest-physical bookkeeping the loaders that place their own structures
// share (Limine, BOOTBOOT; docs/boot-protocols.md): a bump allocator of
// zeroed boot memory, and a memory map painted region by region over the
// e820 map.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/e820.h"

namespace firmware {

inline constexpr uint64_t kBootPage = 4096;
constexpr uint64_t BootAlignUp(uint64_t n, uint64_t a) { return (n + a - 1) & ~(a - 1); }
constexpr uint64_t BootAlignDown(uint64_t n, uint64_t a) { return n & ~(a - 1); }

// Allocations in [start, limit), zero-filled, in order. kConfig naming
// `what` when guest memory runs out.
class BootArena {
 public:
  BootArena(const base::GuestMemory& memory, uint64_t start, uint64_t limit, std::string what)
      : memory_(memory), start_(start), next_(start), limit_(limit), what_(std::move(what)) {}

  base::Result<uint64_t> Alloc(uint64_t size, uint64_t align = 8) {
    const uint64_t at = BootAlignUp(next_, align);
    if (at > limit_ || size > limit_ - at) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "guest memory of {} MiB is too small for {}: {:#x} more bytes are "
                             "needed at {:#x}, below {:#x}",
                             memory_.ram_size() / base::MiB, what_, size, at, limit_);
    }
    TRY(memory_.Fill(at, 0, size));
    next_ = at + size;
    return at;
  }
  base::Result<uint64_t> Put(std::span<const uint8_t> bytes, uint64_t align = 8) {
    const uint64_t at = TRY(Alloc(bytes.size(), align));
    TRY(memory_.Write(at, bytes));
    return at;
  }
  base::Result<uint64_t> PutString(std::string_view text) {
    const uint64_t at = TRY(Alloc(text.size() + 1, 1));
    TRY(memory_.Write(at, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
    return at;
  }
  template <typename T>
  base::Result<uint64_t> PutObj(const T& value) {
    return Put(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)), alignof(T));
  }
  uint64_t start() const { return start_; }
  uint64_t end() const { return BootAlignUp(next_, kBootPage); }  // page-aligned

 private:
  const base::GuestMemory& memory_;
  uint64_t start_, next_, limit_;
  std::string what_;
};

// Sorted, disjoint ranges with a protocol's type each; adjacent ranges of
// one type merge.
template <typename Type>
class RegionMap {
 public:
  struct Range {
    uint64_t begin, end;
    Type type;
  };

  // The e820 map of `ram_size`: RAM as `ram`, the rest as `reserved`.
  RegionMap(uint64_t ram_size, Type ram, Type reserved) {
    for (const auto& e : BuildE820Map(ram_size)) {
      entries_.push_back({e.addr, e.addr + e.size, e.type == kE820Ram ? ram : reserved});
    }
  }

  // Gives [begin, end) the type `type`, splitting what it overlaps.
  void Paint(uint64_t begin, uint64_t end, Type type) {
    if (begin >= end) return;
    std::vector<Range> out;
    for (const auto& r : entries_) {
      if (r.end <= begin || r.begin >= end) {
        out.push_back(r);
        continue;
      }
      if (r.begin < begin) out.push_back({r.begin, begin, r.type});
      if (r.end > end) out.push_back({end, r.end, r.type});
    }
    out.push_back({begin, end, type});
    std::sort(out.begin(), out.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    entries_.clear();
    for (const auto& r : out) {
      if (!entries_.empty() && entries_.back().end == r.begin && entries_.back().type == r.type) {
        entries_.back().end = r.end;
      } else {
        entries_.push_back(r);
      }
    }
  }

  // Ranges of the `aligned` types shrink to whole 4 KiB pages; the partial
  // pages become `rest`.
  void AlignTypes(std::initializer_list<Type> aligned, Type rest) {
    const auto entries = entries_;
    for (const auto& r : entries) {
      if (std::find(aligned.begin(), aligned.end(), r.type) == aligned.end()) continue;
      Paint(r.begin, std::min(r.end, BootAlignUp(r.begin, kBootPage)), rest);
      Paint(std::max(r.begin, BootAlignDown(r.end, kBootPage)), r.end, rest);
    }
  }

  const std::vector<Range>& entries() const { return entries_; }

 private:
  std::vector<Range> entries_;
};

}  // namespace firmware
