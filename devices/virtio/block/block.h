// virtio-blk (virtio 1.2 §5.2) on a raw image file (`--disk PATH[,ro]`).
//
// Features: VIRTIO_BLK_F_SIZE_MAX (1 MiB per segment), SEG_MAX (254 data
// segments per request), BLK_SIZE (512), FLUSH, and RO for read-only disks,
// plus the common ones. A request over SIZE_MAX or SEG_MAX is answered IOERR
// and counted (over_limit). One request queue of 256 entries.
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
// I/O worker. Each Block owns one worker thread (started by Create, joined
// by the destructor). ProcessQueue(), on the event-loop thread under the
// transport lock, only pops chains and appends them to the worker's FIFO;
// the worker does the request (preadv/pwritev straight between the image
// and guest memory, fdatasync) with NO transport lock held and then returns
// the chain with VirtioHost::CompleteUsed(), which takes the transport lock
// for the used ring and the interrupt. So a slow disk never stalls the event
// loop (other devices, console input, the control API) nor a vCPU reading
// this device's registers.
//   Ordering: one worker, strict FIFO: every request starts after the one
//   before it finished, so a FLUSH runs after every write popped before it
//   has completed, and its fdatasync covers them (a write acknowledged
//   before a completed FLUSH is on disk).
//   Bounded: at most the queue size (256) chains can be outstanding, since
//   the driver gets no descriptor back before completion.
//   Reset and teardown: Quiesce() (called by the transport without its lock
//   before a device reset and before the transport is destroyed) drops the
//   requests not started and waits until the one in progress, including its
//   CompleteUsed(), has finished: no guest-memory access and no call into
//   the transport after it returns. A reset therefore waits for at most one
//   request (as QEMU drains in-flight requests on reset), and that request
//   stops at its next 1 MiB piece of host I/O (answered IOERR; its
//   completion is stale anyway). Should one backend call hang, Quiesce()
//   gives up after a deadline (2 s, counted as quiesce_timeouts) so the vCPU
//   resetting the device is not held forever; the late completion is then
//   dropped as stale by the transport's epoch. The destructor stops and
//   joins the worker.
// Locks: transport lock -> worker_mutex_ (ProcessQueue appends under both).
// The worker holds worker_mutex_ only to take a request or to mark itself
// idle, never while doing I/O or calling the transport.
//
// The image is locked with flock(2) (exclusive for read-write, shared for
// read-only) so two VMMs cannot write the same image. Tests can substitute
// the BlockBackend (a slow or recording fake).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "base/guest_log.h"
#include "devices/virtio/single_queue.h"

namespace devices::virtio {

// Where a Block's bytes live. Called on the Block's worker thread only.
class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  virtual uint64_t size_bytes() const = 0;
  // Moves exactly the bytes of `iov` from/to the backend at `offset`.
  [[nodiscard]] virtual base::Result<void> ReadAt(std::span<const iovec> iov, uint64_t offset) = 0;
  [[nodiscard]] virtual base::Result<void> WriteAt(std::span<const iovec> iov, uint64_t offset) = 0;
  // Everything written so far is on stable storage (fdatasync).
  [[nodiscard]] virtual base::Result<void> Sync() = 0;
};

class Block : public SingleQueueDevice {
 public:
  // Feature bits (§5.2.3).
  static constexpr uint64_t kFeatureSizeMax = 1ull << 1;
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
  // Per-request limits, advertised (§5.2.4) and enforced (docs/virtio.md):
  // data segments per request (header and status take the other two
  // descriptors of a full queue) and bytes per segment.
  static constexpr uint32_t kSegMax = kQueueSize - 2;
  static constexpr uint32_t kSizeMax = 1u << 20;
  // Host I/O is done in pieces of this size.
  static constexpr uint64_t kIoPieceBytes = 1u << 20;

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
    uint64_t io_errors = 0;         // requests answered IOERR
    uint64_t unsupported = 0;       // requests answered UNSUPP
    uint64_t completed = 0;         // requests returned to the used ring (not stale)
    uint64_t dropped = 0;           // handed to the worker, dropped by a reset
    uint64_t in_flight = 0;         // handed to the worker, not completed yet
    uint64_t over_limit = 0;        // refused (IOERR): over seg_max or size_max
    uint64_t quiesce_timeouts = 0;  // resets that stopped waiting for a request
  };

  // Opens (and locks) the image. Errors: kNoInput when it cannot be opened,
  // kConfig when it is locked by another process.
  [[nodiscard]] static base::Result<std::shared_ptr<Block>> Create(const std::string& path,
                                                                   bool read_only);
  // Same on any backend; `path` only names the device (serial, logs).
  static std::shared_ptr<Block> CreateWithBackend(std::unique_ptr<BlockBackend> backend,
                                                  const std::string& path, bool read_only);
  ~Block() override;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  std::string_view name() const override { return "block"; }
  uint32_t device_id() const override { return kDeviceIdBlock; }
  uint64_t device_features() const override;
  uint16_t queue_max_size(size_t) const override { return kQueueSize; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void Quiesce() override;
  void QuiesceForTeardown() override;
  DeviceCounters counters() const override;

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  bool read_only() const { return read_only_; }
  Counters block_counters() const;
  // Blocks until the worker has nothing queued or in progress (tests,
  // diagnostics). Any thread but the worker.
  void WaitIdle();
  // How long Quiesce() waits for the request in progress (tests shorten it).
  void set_quiesce_deadline(std::chrono::milliseconds deadline) { quiesce_deadline_ = deadline; }

 protected:
  ChainResult HandleChain(DescriptorChain&& chain) override;
  void OnReset() override;

 private:
  // A chain handed to the worker, with what it needs to finish it.
  struct Request {
    DescriptorChain chain;
    const base::GuestMemory* memory;
    VirtioHost* host;
    uint64_t epoch;
  };

  Block(std::unique_ptr<BlockBackend> backend, std::string path, bool read_only);
  void WorkerLoop();
  // Handles one request; returns the bytes written into the chain (status
  // included) for the used ring.
  uint32_t HandleRequest(const base::GuestMemory& memory, const DescriptorChain& chain);
  uint8_t Execute(const base::GuestMemory& memory, const DescriptorChain& chain,
                  const RequestHeader& header, uint32_t* data_written);
  // Moves the bytes of `segments` between the backend at `offset` and guest memory.
  base::Result<void> DoIo(const base::GuestMemory& memory, std::span<const Segment> segments,
                          uint64_t offset, bool write);

  const std::unique_ptr<BlockBackend> backend_;
  const std::string path_;
  const bool read_only_;
  const uint64_t capacity_sectors_;
  std::string id_;
  base::GuestLog log_;

  std::atomic<uint64_t> reads_{0}, writes_{0}, flushes_{0}, bytes_read_{0}, bytes_written_{0},
      io_errors_{0}, unsupported_{0}, completed_{0}, dropped_{0}, over_limit_{0},
      quiesce_timeouts_{0};
  std::chrono::milliseconds quiesce_deadline_{2000};

  mutable std::mutex worker_mutex_;
  std::condition_variable work_cv_;  // a request arrived, or stop_
  std::condition_variable idle_cv_;  // busy_ went false
  std::deque<Request> pending_;
  bool busy_ = false;
  bool stop_ = false;
  bool abort_ = false;  // Quiesce(): the request in progress stops at its next piece
  std::thread worker_;  // last: started once everything above exists
};

}  // namespace devices::virtio
