// virtio-blk (virtio 1.2 §5.2) on a raw image file (`--disk PATH[,ro]`).
//
// Features: VIRTIO_BLK_F_SEG_MAX, BLK_SIZE (512), FLUSH, and RO for
// read-only disks, plus the common ones. One request queue of 256 entries.
// Requests (§5.2.6): a 16-byte device-readable header {le32 type; le32
// reserved; le64 sector}, the data, and a final device-writable status byte.
//   IN (0)      read  (data writable; length a multiple of 512, inside the disk)
//   OUT (1)     write (data readable; same checks); IOERR on a RO disk (§5.2.6.2)
//   FLUSH (4)   fdatasync(2): a write acknowledged before a completed FLUSH
//               is on stable storage
//   GET_ID (8)  up to 20 bytes of the device serial (the image's base name)
//   other       UNSUPP
// A malformed request (short header, out-of-range sector, odd length, a
// failed host I/O) completes with IOERR; a chain without a writable byte for
// the status cannot be answered and is returned with used length 0. None of
// these hurt the VMM; they are logged (rate-limited) and counted.
//
// I/O is synchronous preadv/pwritev straight into guest memory on the thread
// that calls ProcessQueue, i.e. the event-loop thread (design.md: never a vCPU
// thread), under the transport lock. Simple and correct; a slow disk delays
// the other event-loop work meanwhile (an io_uring or thread-pool backend can
// replace DoIo later without touching the transport).
//
// The image is locked with flock(2) (exclusive for read-write, shared for
// read-only) so two VMMs cannot write the same image.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "devices/legacy/guest_log.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"

namespace devices::virtio {

class Block : public VirtioDevice {
 public:
  // Feature bits (§5.2.3).
  static constexpr uint64_t kFeatureSegMax = 1ull << 2;
  static constexpr uint64_t kFeatureRo = 1ull << 5;
  static constexpr uint64_t kFeatureBlkSize = 1ull << 6;
  static constexpr uint64_t kFeatureFlush = 1ull << 9;
  // Request types and status values (§5.2.6).
  static constexpr uint32_t kTypeIn = 0;
  static constexpr uint32_t kTypeOut = 1;
  static constexpr uint32_t kTypeFlush = 4;
  static constexpr uint32_t kTypeGetId = 8;
  static constexpr uint8_t kStatusOk = 0;
  static constexpr uint8_t kStatusIoErr = 1;
  static constexpr uint8_t kStatusUnsupp = 2;
  static constexpr uint64_t kSectorSize = 512;
  static constexpr uint32_t kIdBytes = 20;  // VIRTIO_BLK_ID_BYTES
  static constexpr uint16_t kQueueSize = 256;

  struct RequestHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  };
  static_assert(sizeof(RequestHeader) == 16);

  struct Counters {
    uint64_t reads = 0;
    uint64_t writes = 0;
    uint64_t flushes = 0;
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
    uint64_t io_errors = 0;    // requests answered IOERR
    uint64_t unsupported = 0;  // requests answered UNSUPP
  };

  // Opens (and locks) the image. Errors: kNoInput when it cannot be opened,
  // kConfig when it is locked by another process.
  [[nodiscard]] static vmm::Result<std::shared_ptr<Block>> Create(const std::string& path,
                                                                  bool read_only);
  ~Block() override;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  std::string_view name() const override { return "block"; }
  uint32_t device_id() const override { return kDeviceIdBlock; }
  uint64_t device_features() const override;
  size_t queue_count() const override { return 1; }
  uint16_t queue_max_size(size_t) const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  vmm::Result<void> Activate(const vmm::GuestMemory& memory, std::span<Queue> queues,
                             uint64_t features, VirtioHost& host) override;
  void Reset() override;
  void ProcessQueue(size_t queue) override;

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  bool read_only() const { return read_only_; }
  const Counters& counters() const { return counters_; }

 private:
  Block(int fd, std::string path, bool read_only, uint64_t capacity_sectors);
  // Handles one request; returns the bytes written into the chain (status
  // included) for the used ring.
  uint32_t HandleRequest(const DescriptorChain& chain);
  uint8_t Execute(const DescriptorChain& chain, const RequestHeader& header,
                  uint32_t* data_written);
  // Moves `length` bytes between the disk at `offset` and the guest segments.
  vmm::Result<void> DoIo(std::span<const Segment> segments, uint64_t offset, bool write);

  const int fd_;
  const std::string path_;
  const bool read_only_;
  const uint64_t capacity_sectors_;
  std::string id_;
  GuestLog log_;
  Counters counters_;
  const vmm::GuestMemory* memory_ = nullptr;
  Queue* queue_ = nullptr;
  VirtioHost* host_ = nullptr;
};

}  // namespace devices::virtio
