// Physical frame allocator: 4 KiB frames from the boot memory map.
//
// Ranges of never-used frames are handed out by bumping a cursor, so start-up
// costs nothing per frame (no bitmap to clear: instructions are expensive
// under an emulating KVM). Freed frames go on an intrusive LIFO list threaded
// through their first 8 bytes (via PhysMem) and are reused first.
//
// Invariants: every frame is in exactly one of {an unbumped range, the free
// list, allocated}; frame 0 is never handed out (0 means "none"); ranges are
// disjoint and page-aligned. Pure logic: host-tested. Not thread-safe: the
// kernel calls it with interrupts off.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/phys.h"

namespace kernel {

class FrameAllocator {
 public:
  static constexpr size_t kMaxRanges = 64;

  constexpr explicit FrameAllocator(PhysMem* phys = nullptr) : phys_(phys) {}
  void set_phys(PhysMem* phys) { phys_ = phys; }

  // Adds usable RAM [base, base + size), shrunk inward to whole frames.
  // Returns false when the range table is full (the range is dropped).
  bool AddRange(uint64_t base, uint64_t size);
  // Removes [base, base + size), grown outward to whole frames, from the
  // unbumped ranges (kernel image, initrd, boot structures). Call before the
  // first Alloc.
  bool Reserve(uint64_t base, uint64_t size);

  // A frame's physical address, or 0 when none is left.
  uint64_t Alloc();
  // Returns a frame from Alloc. Frame 0 and misaligned addresses are ignored.
  void Free(uint64_t phys);

  uint64_t free_frames() const { return free_frames_; }
  uint64_t total_frames() const { return total_frames_; }
  size_t range_count() const { return range_count_; }

 private:
  struct Range {
    uint64_t next;  // first unbumped frame
    uint64_t end;   // one past the last frame
  };
  bool Insert(uint64_t begin, uint64_t end);

  PhysMem* phys_;
  Range ranges_[kMaxRanges] = {};
  size_t range_count_ = 0;
  size_t current_ = 0;  // ranges before current_ are exhausted
  uint64_t free_list_ = 0;
  uint64_t free_frames_ = 0;
  uint64_t total_frames_ = 0;
};

}  // namespace kernel
