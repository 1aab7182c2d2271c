#include "devices/virtio/queue.h"

#include <algorithm>
#include <atomic>
#include <utility>

namespace devices::virtio {
namespace {

constexpr uint64_t kDescriptorSize = sizeof(Descriptor);
// Ring header: le16 flags, le16 idx (§2.7.6, §2.7.8).
constexpr uint64_t kRingHeader = 4;

}  // namespace

bool Queue::SizeIsValid(uint16_t size) const {
  return size != 0 && size <= max_size_ && (size & (size - 1)) == 0;
}

void Queue::Reset() {
  size_ = max_size_;
  ready_ = false;
  desc_table_ = avail_ring_ = used_ring_ = 0;
  memory_ = nullptr;
  event_idx_ = indirect_ = broken_ = false;
  next_avail_ = next_used_ = signalled_used_ = 0;
}

template <typename... Args>
std::unexpected<base::Error> Queue::Fail(uint64_t* counter, fmt::format_string<Args...> format,
                                         Args&&... args) {
  ++*counter;
  broken_ = true;
  return base::MakeError(base::ErrorKind::kInternal, format, std::forward<Args>(args)...);
}

base::Result<void> Queue::Activate(const base::GuestMemory& memory, bool event_idx, bool indirect) {
  memory_ = nullptr;
  if (!SizeIsValid(size_)) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "queue size {} is not a power of 2 in [1, {}]", size_, max_size_);
  }
  // §2.7 "Alignment requirements": descriptor table 16, available ring 2,
  // used ring 4.
  if (desc_table_ % 16 != 0 || avail_ring_ % 2 != 0 || used_ring_ % 4 != 0) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "misaligned rings: desc {:#x} avail {:#x} used {:#x}", desc_table_,
                           avail_ring_, used_ring_);
  }
  const uint64_t desc_bytes = kDescriptorSize * size_;
  const uint64_t avail_bytes = kRingHeader + 2ull * size_ + 2;  // + used_event
  const uint64_t used_bytes = kRingHeader + 8ull * size_ + 2;   // + avail_event
  if (!memory.Contains(desc_table_, desc_bytes) || !memory.Contains(avail_ring_, avail_bytes) ||
      !memory.Contains(used_ring_, used_bytes)) {
    ++stats_.outside_ram;
    return base::MakeError(base::ErrorKind::kInternal,
                           "rings outside guest RAM: desc {:#x}+{:#x} avail {:#x}+{:#x} used "
                           "{:#x}+{:#x}",
                           desc_table_, desc_bytes, avail_ring_, avail_bytes, used_ring_,
                           used_bytes);
  }
  memory_ = &memory;
  event_idx_ = event_idx;
  indirect_ = indirect;
  broken_ = false;
  next_avail_ = next_used_ = signalled_used_ = 0;
  visit_.assign(size_, 0);
  indirect_visit_.assign(size_, 0);
  visit_stamp_ = 0;
  return {};
}

base::Result<uint16_t> Queue::ReadAvailIdx() {
  auto idx = memory_->ReadObj<uint16_t>(avail_ring_ + 2);
  if (!idx) return Fail(&stats_.outside_ram, "available ring index unreadable");
  return *idx;
}

void Queue::SetAvailEvent(uint16_t value) {
  // Validated at Activate(); a failure here cannot happen, and would only
  // cost the driver's notification suppression.
  (void)memory_->WriteObj<uint16_t>(used_ring_ + kRingHeader + 8ull * size_, value);
}

base::Result<std::optional<DescriptorChain>> Queue::Pop() { return PopNext(false); }

base::Result<std::optional<DescriptorChain>> Queue::PopOrEnableNotification() {
  return PopNext(true);
}

base::Result<std::optional<DescriptorChain>> Queue::PopNext(bool enable_notification) {
  if (memory_ == nullptr || broken_) return std::nullopt;
  uint16_t avail_idx = TRY(ReadAvailIdx());
  if (avail_idx == next_avail_ && enable_notification && event_idx_) {
    // §2.7.10: ask for a notification once the driver passes next_avail_,
    // then look again in case it added a buffer before seeing that.
    SetAvailEvent(next_avail_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = TRY(ReadAvailIdx());
  }
  const uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return std::nullopt;
  if (pending > size_) {
    return Fail(&stats_.avail_overrun,
                "available index {} is {} entries ahead of the device (queue size {})", avail_idx,
                pending, size_);
  }
  // Read the ring entry only after seeing the index (§2.7.13.3 ordering).
  std::atomic_thread_fence(std::memory_order_acquire);
  auto head = memory_->ReadObj<uint16_t>(avail_ring_ + kRingHeader + 2ull * (next_avail_ % size_));
  if (!head) {
    return Fail(&stats_.outside_ram, "available ring entry {} unreadable", next_avail_ % size_);
  }
  DescriptorChain chain = TRY(WalkChain(*head));
  ++next_avail_;
  ++stats_.chains;
  return chain;
}

base::Result<void> Queue::AddBuffer(DescriptorChain* chain, const Descriptor& desc, size_t* count) {
  if (++*count > size_) {
    return Fail(&stats_.too_long, "chain from head {} has more than {} buffers", chain->head,
                size_);
  }
  if (desc.len == 0) {
    return Fail(&stats_.zero_length, "chain from head {}: zero-length buffer at {:#x}", chain->head,
                desc.addr);
  }
  if (!memory_->Contains(desc.addr, desc.len)) {
    return Fail(&stats_.outside_ram, "chain from head {}: buffer {:#x}+{:#x} is outside guest RAM",
                chain->head, desc.addr, desc.len);
  }
  if (desc.flags & kDescWrite) {
    chain->writable.push_back({desc.addr, desc.len});
    chain->writable_bytes += desc.len;
  } else {
    if (!chain->writable.empty()) {
      // §2.7.4.2: device-writable buffers come after device-readable ones.
      return Fail(&stats_.wrong_direction,
                  "chain from head {}: readable buffer {:#x} after a writable one", chain->head,
                  desc.addr);
    }
    chain->readable.push_back({desc.addr, desc.len});
    chain->readable_bytes += desc.len;
  }
  return {};
}

base::Result<DescriptorChain> Queue::WalkChain(uint16_t head) {
  if (head >= size_) {
    return Fail(&stats_.index_out_of_range, "head index {} outside the queue (size {})", head,
                size_);
  }
  if (++visit_stamp_ == 0) {  // stamp wrapped: forget all old visits
    std::fill(visit_.begin(), visit_.end(), 0);
    std::fill(indirect_visit_.begin(), indirect_visit_.end(), 0);
    visit_stamp_ = 1;
  }
  DescriptorChain chain;
  chain.head = head;

  // The table being walked: the queue's own, or one indirect table.
  uint64_t table = desc_table_;
  uint32_t table_size = size_;
  std::vector<uint32_t>* visit = &visit_;
  bool in_indirect = false;
  uint32_t index = head;
  size_t count = 0;
  for (;;) {
    if (index >= table_size) {
      return Fail(&stats_.index_out_of_range, "chain from head {}: next index {} outside {} table",
                  head, index, in_indirect ? "indirect" : "descriptor");
    }
    if ((*visit)[index] == visit_stamp_) {
      return Fail(&stats_.loops, "chain from head {} loops back to descriptor {}", head, index);
    }
    (*visit)[index] = visit_stamp_;
    const uint64_t desc_gpa = table + kDescriptorSize * index;
    auto desc = memory_->ReadObj<Descriptor>(desc_gpa);
    if (!desc) {
      // Validated at Activate() (the queue's table) or just above (an
      // indirect table); name the table anyway should that ever change.
      return Fail(&stats_.outside_ram, "chain from head {}: {} descriptor {} at {:#x} unreadable",
                  head, in_indirect ? "indirect" : "ring", index, desc_gpa);
    }
    if (desc->flags & kDescIndirect) {
      // §2.7.5.3: an indirect descriptor stands for the whole chain.
      if (in_indirect) {
        return Fail(&stats_.nested_indirect, "chain from head {}: indirect inside indirect", head);
      }
      if (!indirect_) {
        return Fail(&stats_.bad_indirect,
                    "chain from head {}: indirect descriptor without VIRTIO_F_INDIRECT_DESC", head);
      }
      if (index != head || (desc->flags & kDescNext)) {
        return Fail(&stats_.bad_indirect,
                    "chain from head {}: indirect descriptor must be alone (index {}, flags "
                    "{:#x})",
                    head, index, desc->flags);
      }
      if (desc->len == 0 || desc->len % kDescriptorSize != 0) {
        return Fail(&stats_.bad_indirect, "chain from head {}: indirect table length {:#x}", head,
                    desc->len);
      }
      const uint32_t entries = desc->len / static_cast<uint32_t>(kDescriptorSize);
      if (entries > size_) {
        return Fail(&stats_.too_long,
                    "chain from head {}: indirect table of {} entries exceeds queue size {}", head,
                    entries, size_);
      }
      if (!memory_->Contains(desc->addr, desc->len)) {
        return Fail(&stats_.outside_ram,
                    "chain from head {}: indirect table {:#x}+{:#x} outside guest RAM", head,
                    desc->addr, desc->len);
      }
      table = desc->addr;
      table_size = entries;
      visit = &indirect_visit_;
      in_indirect = true;
      index = 0;
      continue;
    }
    TRY(AddBuffer(&chain, *desc, &count));
    if (!(desc->flags & kDescNext)) return chain;
    index = desc->next;
  }
}

base::Result<void> Queue::AddUsed(uint16_t head, uint32_t len) {
  if (memory_ == nullptr || broken_) return {};
  const uint64_t slot = used_ring_ + kRingHeader + 8ull * (next_used_ % size_);
  if (!memory_->WriteObj(slot, UsedElement{head, len})) {
    return Fail(&stats_.outside_ram, "used ring unwritable");
  }
  ++next_used_;
  // §2.7.8: the element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  if (!memory_->WriteObj<uint16_t>(used_ring_ + 2, next_used_)) {
    return Fail(&stats_.outside_ram, "used ring unwritable");
  }
  return {};
}

bool Queue::NeedsInterrupt() {
  if (memory_ == nullptr) return false;
  const uint16_t old = signalled_used_;
  const uint16_t now = next_used_;
  if (old == now) return false;
  signalled_used_ = now;
  // The used index must be visible before we read the driver's wishes.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    auto flags = memory_->ReadObj<uint16_t>(avail_ring_);
    return !flags || !(*flags & kAvailNoInterrupt);
  }
  auto used_event = memory_->ReadObj<uint16_t>(avail_ring_ + kRingHeader + 2ull * size_);
  if (!used_event) return true;
  // §2.7.10 vring_need_event(): interrupt if used_event lies in [old, now).
  return static_cast<uint16_t>(now - *used_event - 1) < static_cast<uint16_t>(now - old);
}

std::vector<Segment> SliceSegments(std::span<const Segment> segments, uint64_t offset,
                                   uint64_t length) {
  std::vector<Segment> slice;
  for (const Segment& segment : segments) {
    if (length == 0) break;
    if (offset >= segment.len) {
      offset -= segment.len;
      continue;
    }
    const uint64_t take = std::min<uint64_t>(segment.len - offset, length);
    slice.push_back({segment.addr + offset, static_cast<uint32_t>(take)});
    length -= take;
    offset = 0;
  }
  return slice;
}

base::Result<void> ReadSegments(const base::GuestMemory& memory, std::span<const Segment> segments,
                                uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  for (const Segment& piece : SliceSegments(segments, offset, out.size())) {
    TRY(memory.Read(piece.addr, out.subspan(done, piece.len)));
    done += piece.len;
  }
  if (done != out.size()) {
    return base::MakeError(base::ErrorKind::kInternal, "chain holds {} of {} bytes at offset {}",
                           done, out.size(), offset);
  }
  return {};
}

base::Result<void> WriteSegments(const base::GuestMemory& memory, std::span<const Segment> segments,
                                 uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  for (const Segment& piece : SliceSegments(segments, offset, data.size())) {
    TRY(memory.Write(piece.addr, data.subspan(done, piece.len)));
    done += piece.len;
  }
  if (done != data.size()) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "chain has room for {} of {} bytes at offset {}", done, data.size(),
                           offset);
  }
  return {};
}

}  // namespace devices::virtio
