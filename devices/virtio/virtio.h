// Virtio device model, independent of the transport (docs/conventions.md: crosvm's
// VirtioDevice, Firecracker's devices/virtio/device.rs). A transport
// (devices/virtio/mmio.h today, PCI later) owns one VirtioDevice and its
// queues, runs the status state machine and calls the device.
//
// Device status state machine (virtio 1.2 §2.1, §3.1.1), enforced by the
// transport; the device only sees Activate() and Reset():
//
//   RESET (status 0) --ACKNOWLEDGE--> ACK --DRIVER--> DRIVER
//     DRIVER: driver features may be written (§2.2)
//     --FEATURES_OK--> accepted only if every feature the driver acked was
//        offered by the device and VIRTIO_F_VERSION_1 is among them;
//        otherwise the bit does not stick and the driver sees it clear
//     FEATURES_OK: queues may be configured (size, addresses, ready)
//     --DRIVER_OK--> the ready queues are validated (alignment, rings inside
//        RAM) and the device is activated: Activate(memory, queues, features,
//        host). From here queue notifications reach ProcessQueue().
//   Any state --write 0--> RESET: device Reset(), queues, features,
//     interrupt status cleared; the config generation counter is kept.
//   Any state --device error--> DEVICE_NEEDS_RESET set (a broken queue or a
//     failed activation) plus a config-change interrupt (§2.1.2); the device
//     does no more work until the driver resets it.
//   The driver may set FAILED at any time; it is recorded, nothing else.
// Out-of-order writes (DRIVER without ACKNOWLEDGE, DRIVER_OK without
// FEATURES_OK, clearing a bit other than through reset) are ignored and
// counted as guest errors.
//
// Threads: the transport serialises every device call under its own mutex.
// Register accesses arrive on vCPU threads; ProcessQueue() runs on the
// event-loop thread (ioeventfd or the transport's posted notify), so device
// work never runs on a vCPU thread. A device whose work is slow (virtio-blk)
// only pops chains in ProcessQueue() and hands them to its own thread, which
// returns them with VirtioHost::CompleteUsed() (no transport lock held while
// the work runs). Before a reset, and when the transport is destroyed, the
// transport calls Quiesce() without its lock: the device drops work not yet
// started and waits for the work in progress, so no chain of the old
// activation completes afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"

namespace devices::virtio {

class Queue;
struct UsedElement;

// What a device counts, for GET /metrics and the exit summary. "Read" and
// "written" are from the guest's side: bytes the guest read (disk reads,
// entropy, console input) and bytes it wrote (disk writes, console output).
struct DeviceCounters {
  uint64_t requests = 0;       // chains completed (returned in the used ring)
  uint64_t bytes_read = 0;     // device -> guest
  uint64_t bytes_written = 0;  // guest -> device
  uint64_t errors = 0;         // requests completed with an error status
  // Device-specific counters ("flushes", "in_flight", ...), in a fixed order.
  std::vector<std::pair<std::string, uint64_t>> extra;
};

// Device status bits (virtio 1.2 §2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// Reserved feature bits (virtio 1.2 §6).
inline constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr uint64_t kFeatureEventIdx = 1ull << 29;      // VIRTIO_F_RING_EVENT_IDX
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;      // VIRTIO_F_VERSION_1
// What every device here offers on top of its own features.
inline constexpr uint64_t kCommonFeatures =
    kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc;

// Device IDs (virtio 1.2 §5).
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdConsole = 3;
inline constexpr uint32_t kDeviceIdRng = 4;

// Interrupt status bits (virtio 1.2 §4.2.2, InterruptStatus).
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// What a device may ask of its transport. Implemented by the transport.
class VirtioHost {
 public:
  virtual ~VirtioHost() = default;
  // Used buffers were added to `queue`: raise the used-buffer interrupt
  // unless the driver suppressed it (§2.7.7, §2.7.10). Device thread only.
  virtual void SignalUsed(size_t queue) = 0;
  // The device changed its configuration: bump the generation counter and
  // raise the configuration-change interrupt (§2.4.2). Device thread only.
  virtual void SignalConfigChange() = 0;
  // `queue` is broken (malformed ring or chain): set DEVICE_NEEDS_RESET.
  // Device thread only.
  virtual void QueueFailed(size_t queue, const base::Error& error) = 0;
  // Schedules ProcessQueue(queue) on the device thread. Any thread; takes
  // no lock of the device (used for host-side input such as console bytes).
  virtual void Kick(size_t queue) = 0;
  // The current activation's number (device thread, inside a device call).
  // A chain popped now and handed to another thread is completed with it.
  virtual uint64_t epoch() const = 0;
  // Returns chains that were handed to another thread: adds `used` to the
  // used ring of `queue` and signals as SignalUsed() does. Any thread, with
  // none of the device's locks held (it takes the transport's lock). Chains
  // of an older `epoch` (the device was reset meanwhile) are dropped.
  // Returns whether they reached the used ring.
  virtual bool CompleteUsed(size_t queue, uint64_t epoch, std::span<const UsedElement> used) = 0;
};

// A virtio device (block, console, entropy, ...). Owned by its transport
// (shared with whoever feeds it host input). All methods are called with the
// transport's lock held, so they never run concurrently with each other.
class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual std::string_view name() const = 0;
  virtual uint32_t device_id() const = 0;  // §5
  // Features offered to the driver, including kCommonFeatures.
  virtual uint64_t device_features() const = 0;
  virtual size_t queue_count() const = 0;
  virtual uint16_t queue_max_size(size_t /*queue*/) const { return 256; }

  // Device-specific configuration space (§4.2.2 offset 0x100 on MMIO).
  // Reads outside the structure return zeros; writes to read-only fields are
  // ignored. `offset` + `data.size()` is within the transport's window.
  virtual void ReadConfig(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void WriteConfig(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  // DRIVER_OK: the driver finished set-up. `queues` (one per queue_count(),
  // validated if ready) and `host` stay valid until Reset(). `features` is
  // what the driver accepted. An error sets DEVICE_NEEDS_RESET.
  [[nodiscard]] virtual base::Result<void> Activate(const base::GuestMemory& memory,
                                                    std::span<Queue> queues, uint64_t features,
                                                    VirtioHost& host) = 0;
  // Back to the state before Activate(); drop every reference to queues.
  virtual void Reset() = 0;
  // Called WITHOUT the transport lock before Reset(): drop chains handed
  // off but not started, wait for those in progress (their CompleteUsed()
  // included). A device may bound the wait (a reset from a vCPU must not
  // hang on a stuck backend; a late completion is then dropped as stale by
  // the epoch). Any thread; idempotent. Devices that do all work inside
  // ProcessQueue() need nothing.
  virtual void Quiesce() {}
  // Before the transport is destroyed: as Quiesce(), but waits without a
  // deadline, since no completion may reach a transport that is gone.
  virtual void QuiesceForTeardown() { Quiesce(); }
  // Counters (any thread).
  virtual DeviceCounters counters() const { return {}; }

  // The driver notified `queue` (or Kick() asked for it): process what is
  // available. Only called while activated and not broken.
  virtual void ProcessQueue(size_t queue) = 0;
};

}  // namespace devices::virtio
