#include "kernel/frame_allocator.h"

namespace kernel {

bool FrameAllocator::Insert(uint64_t begin, uint64_t end) {
  if (begin >= end) return true;
  if (range_count_ == kMaxRanges) return false;
  ranges_[range_count_++] = Range{begin, end};
  const uint64_t frames = (end - begin) / kPageSize;
  free_frames_ += frames;
  total_frames_ += frames;
  return true;
}

bool FrameAllocator::AddRange(uint64_t base, uint64_t size) {
  if (size == 0) return true;
  uint64_t end = base + size;
  if (end < base) end = UINT64_MAX;  // clamp wrap-around
  const uint64_t begin = base == 0 ? kPageSize : (base + kPageMask) & ~kPageMask;  // never frame 0
  if (begin < base) return true;  // base near UINT64_MAX
  end &= ~kPageMask;
  return Insert(begin, end);
}

bool FrameAllocator::Reserve(uint64_t base, uint64_t size) {
  if (size == 0) return true;
  const uint64_t begin = base & ~kPageMask;
  uint64_t end = base + size;
  if (end < base) end = UINT64_MAX;
  end = end > UINT64_MAX - kPageMask ? UINT64_MAX & ~kPageMask : (end + kPageMask) & ~kPageMask;
  bool ok = true;
  for (size_t i = 0; i < range_count_; ++i) {
    Range& r = ranges_[i];
    if (end <= r.next || begin >= r.end) continue;
    const uint64_t cut_begin = begin > r.next ? begin : r.next;
    const uint64_t cut_end = end < r.end ? end : r.end;
    const uint64_t removed = (cut_end - cut_begin) / kPageSize;
    free_frames_ -= removed;
    total_frames_ -= removed;
    const uint64_t old_end = r.end;
    if (cut_begin == r.next) {
      r.next = cut_end;  // trim the front (possibly to empty)
    } else {
      r.end = cut_begin;  // trim the back; a tail may remain
      if (cut_end < old_end) {
        // The tail is a new range; its frames are already counted.
        if (range_count_ == kMaxRanges) {
          const uint64_t lost = (old_end - cut_end) / kPageSize;
          free_frames_ -= lost;
          total_frames_ -= lost;
          ok = false;
        } else {
          ranges_[range_count_++] = Range{cut_end, old_end};
        }
      }
    }
  }
  return ok;
}

uint64_t FrameAllocator::Alloc() {
  if (free_list_ != 0) {
    const uint64_t frame = free_list_;
    free_list_ = *static_cast<uint64_t*>(phys_->Frame(frame));
    --free_frames_;
    return frame;
  }
  while (current_ < range_count_) {
    Range& r = ranges_[current_];
    if (r.next < r.end) {
      const uint64_t frame = r.next;
      r.next += kPageSize;
      --free_frames_;
      return frame;
    }
    ++current_;
  }
  return 0;
}

void FrameAllocator::Free(uint64_t phys) {
  if (phys == 0 || (phys & kPageMask) != 0) return;
  *static_cast<uint64_t*>(phys_->Frame(phys)) = free_list_;
  free_list_ = phys;
  ++free_frames_;
}

}  // namespace kernel
