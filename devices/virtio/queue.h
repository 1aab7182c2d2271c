// Split virtqueue, device side (virtio 1.2 §2.7).
//
//   descriptor table  16 bytes × size, 16-aligned (§2.7.5)
//     { le64 addr; le32 len; le16 flags (NEXT 1, WRITE 2, INDIRECT 4); le16 next; }
//   available ring    2-aligned (§2.7.6)
//     { le16 flags (NO_INTERRUPT 1); le16 idx; le16 ring[size]; le16 used_event; }
//   used ring         4-aligned (§2.7.8)
//     { le16 flags (NO_NOTIFY 1); le16 idx; {le32 id; le32 len;} ring[size]; le16 avail_event; }
//
// Everything the driver wrote is read through vmm::GuestMemory and checked
// before it is trusted. A chain is rejected (and the queue marked broken,
// which makes the transport set DEVICE_NEEDS_RESET) when:
//   - a descriptor index (head or next) is outside the table,
//   - it loops (a descriptor visited twice) or has more buffer descriptors
//     than the queue size (§2.7.5.3.1 "MUST NOT create a descriptor chain
//     longer than the Queue Size"),
//   - a buffer has length 0 (as QEMU: never meaningful, never followed),
//   - a buffer lies outside guest RAM (including address wrap-around),
//   - a device-readable buffer follows a device-writable one (§2.7.4.2),
//   - an indirect descriptor is used without VIRTIO_F_INDIRECT_DESC, has a
//     length that is zero or not a multiple of 16, has NEXT set as well, or
//     appears inside an indirect table (§2.7.5.3.1),
//   - the available index runs more than `size` ahead of the device.
// Every rejection is counted in Stats by kind.
//
// Not thread-safe: owned by a transport, configured on the vCPU thread before
// DRIVER_OK and used by the device on the event-loop thread afterwards; the
// transport's lock orders the two.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"

namespace devices::virtio {

// Descriptor flags (§2.7.5).
inline constexpr uint16_t kDescNext = 1;
inline constexpr uint16_t kDescWrite = 2;
inline constexpr uint16_t kDescIndirect = 4;
// Ring flags (§2.7.6, §2.7.8).
inline constexpr uint16_t kAvailNoInterrupt = 1;
inline constexpr uint16_t kUsedNoNotify = 1;

inline constexpr uint16_t kMaxQueueSize = 32768;  // §2.7 "maximum Queue Size value is 32768"

struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

struct UsedElement {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElement) == 8);

// One guest buffer of a chain, already checked to lie inside guest RAM.
struct Segment {
  uint64_t addr;
  uint32_t len;
};

// A validated descriptor chain: readable buffers first, then writable ones.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Segment> readable;
  std::vector<Segment> writable;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

class Queue {
 public:
  // Why chains or rings were rejected.
  struct Stats {
    uint64_t chains = 0;  // chains popped successfully
    uint64_t loops = 0;
    uint64_t too_long = 0;  // more buffers than the queue size
    uint64_t zero_length = 0;
    uint64_t wrong_direction = 0;  // readable after writable
    uint64_t nested_indirect = 0;
    uint64_t bad_indirect = 0;        // feature off, bad length, INDIRECT|NEXT
    uint64_t index_out_of_range = 0;  // head or next outside the table
    uint64_t outside_ram = 0;         // a buffer or ring outside guest RAM
    uint64_t avail_overrun = 0;       // avail idx more than size ahead

    // Every rejection, whatever its kind.
    uint64_t rejected() const {
      return loops + too_long + zero_length + wrong_direction + nested_indirect + bad_indirect +
             index_out_of_range + outside_ram + avail_overrun;
    }
  };

  explicit Queue(uint16_t max_size) : max_size_(max_size) {}

  // --- Driver configuration (transport registers, §4.2.2) -----------------
  uint16_t max_size() const { return max_size_; }
  uint16_t size() const { return size_; }
  void set_size(uint16_t size) { size_ = size; }
  bool ready() const { return ready_; }
  void set_ready(bool ready) { ready_ = ready; }
  uint64_t desc_table() const { return desc_table_; }
  uint64_t avail_ring() const { return avail_ring_; }
  uint64_t used_ring() const { return used_ring_; }
  void set_desc_table(uint64_t gpa) { desc_table_ = gpa; }
  void set_avail_ring(uint64_t gpa) { avail_ring_ = gpa; }
  void set_used_ring(uint64_t gpa) { used_ring_ = gpa; }

  // True when `size` is a valid driver choice: a power of 2, 1..max_size (§2.7).
  bool SizeIsValid(uint16_t size) const;

  // Back to the reset state: not ready, size = max_size, addresses 0.
  void Reset();

  // Checks the size, alignment (§2.7 table: 16/2/4) and that the three
  // rings lie in guest RAM; then arms the queue for use with these
  // negotiated features. Fails (and the queue stays unusable) otherwise.
  [[nodiscard]] base::Result<void> Activate(const base::GuestMemory& memory, bool event_idx,
                                            bool indirect);
  bool active() const { return memory_ != nullptr; }

  // The next available chain, or nullopt if the ring is empty (or the queue
  // is broken or inactive). An error describes a rejected chain or ring and
  // marks the queue broken.
  [[nodiscard]] base::Result<std::optional<DescriptorChain>> Pop();
  // Like Pop(), but when the ring looks empty it first tells the driver to
  // notify again (avail_event = next index with EVENT_IDX, §2.7.10; else
  // clears NO_NOTIFY), then checks once more, closing the race with a driver
  // that added a buffer meanwhile.
  [[nodiscard]] base::Result<std::optional<DescriptorChain>> PopOrEnableNotification();
  // Puts back the last popped chain (e.g. no room for input yet).
  void Undo() { --next_avail_; }

  // Returns `head` to the driver with `len` bytes written (§2.7.8).
  [[nodiscard]] base::Result<void> AddUsed(uint16_t head, uint32_t len);

  // Whether the driver wants an interrupt for the used buffers added since
  // the last call: used_event with EVENT_IDX (§2.7.10), else the
  // NO_INTERRUPT flag (§2.7.7). False when nothing was added.
  bool NeedsInterrupt();

  bool broken() const { return broken_; }
  const Stats& stats() const { return stats_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }

 private:
  // Fails the queue: counts, marks broken, builds the error.
  template <typename... Args>
  std::unexpected<base::Error> Fail(uint64_t* counter, fmt::format_string<Args...> format,
                                    Args&&... args);
  // Pop() and PopOrEnableNotification() share this.
  base::Result<std::optional<DescriptorChain>> PopNext(bool enable_notification);
  base::Result<DescriptorChain> WalkChain(uint16_t head);
  // Appends one buffer descriptor to `chain` after checking it.
  base::Result<void> AddBuffer(DescriptorChain* chain, const Descriptor& desc, size_t* count);
  base::Result<uint16_t> ReadAvailIdx();
  void SetAvailEvent(uint16_t value);

  const uint16_t max_size_;
  uint16_t size_ = max_size_;
  bool ready_ = false;
  uint64_t desc_table_ = 0;
  uint64_t avail_ring_ = 0;
  uint64_t used_ring_ = 0;

  const base::GuestMemory* memory_ = nullptr;  // set by Activate
  bool event_idx_ = false;
  bool indirect_ = false;
  bool broken_ = false;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // next_used_ at the last NeedsInterrupt()
  // Loop detection: visit_[i] == visit_stamp_ means descriptor i was seen in
  // the chain being walked (no clearing between chains).
  std::vector<uint32_t> visit_;
  std::vector<uint32_t> indirect_visit_;
  uint32_t visit_stamp_ = 0;
  Stats stats_;
};

// Copy helpers over a chain's segments (as if they were one buffer).
// Copies out.size() bytes starting `offset` bytes into `segments`; fails
// when the segments hold fewer bytes.
[[nodiscard]] base::Result<void> ReadSegments(const base::GuestMemory& memory,
                                              std::span<const Segment> segments, uint64_t offset,
                                              std::span<uint8_t> out);
[[nodiscard]] base::Result<void> WriteSegments(const base::GuestMemory& memory,
                                               std::span<const Segment> segments, uint64_t offset,
                                               std::span<const uint8_t> data);
// The segments covering [offset, offset + length) of `segments` (clipped to
// what they hold).
std::vector<Segment> SliceSegments(std::span<const Segment> segments, uint64_t offset,
                                   uint64_t length);

}  // namespace devices::virtio
