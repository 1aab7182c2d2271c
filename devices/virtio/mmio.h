// virtio-mmio transport, version 2 (virtio 1.2 §4.2). One per device, at
// firmware::kVirtioMmioBase + n * kVirtioMmioStride with IRQ
// kVirtioMmioFirstIrq + n, announced to Linux-style guests with
// CommandLineWord() ("virtio_mmio.device=4K@0xd0000000:5").
//
// Register layout (§4.2.2): 0x000 MagicValue "virt", 0x004 Version 2,
// 0x008 DeviceID, 0x00c VendorID, 0x010 DeviceFeatures (+0x014 Sel),
// 0x020 DriverFeatures (+0x024 Sel), 0x030 QueueSel, 0x034 QueueNumMax,
// 0x038 QueueNum, 0x044 QueueReady, 0x050 QueueNotify, 0x060
// InterruptStatus, 0x064 InterruptACK, 0x070 Status, 0x080/0x084 QueueDesc,
// 0x090/0x094 QueueDriver, 0x0a0/0x0a4 QueueDevice, 0x0ac SHMSel,
// 0x0b0-0x0bc SHMLen/SHMBase (no regions: all ones), 0x0fc
// ConfigGeneration, 0x100.. device configuration. Registers take 32-bit
// aligned accesses only (§4.2.2.2); others are ignored and counted. The
// configuration space takes any width.
//
// The status state machine is described in devices/virtio/virtio.h.
// Queue registers are writable only between FEATURES_OK and DRIVER_OK and
// while the selected queue is not ready; QueueReady=1 needs a power-of-2
// QueueNum no larger than QueueNumMax.
//
// Notifications and interrupts (docs/architecture.md, "Threads and locks"):
//  - The integrator registers, per queue i, a KVM ioeventfd on
//    base + kQueueNotifyOffset (4 bytes, datamatch i) and calls
//    NotifyQueue(i) on the event-loop thread when it fires; the vCPU then
//    never exits for a notify. Without an ioeventfd, a guest write to
//    QueueNotify arrives in Write() on the vCPU thread, which only posts
//    NotifyQueue(i) to `executor` (the event loop) and returns.
//  - Interrupts, edge per event (as Firecracker): every interrupt event
//    sets its InterruptStatus bit (used buffer, configuration change) and
//    calls irq->SetLevel(true) once, even when InterruptStatus was already
//    non-zero; an irqfd backend turns each call into one interrupt, so a
//    driver that has not acknowledged an earlier one still hears about
//    later completions. irq->SetLevel(false) follows when InterruptACK (or a
//    reset) clears the last bit, for level backends. A used-buffer event is
//    only raised when the driver asked for it: VIRTIO_F_EVENT_IDX used_event
//    (§2.7.10) or, without it, VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7);
//    suppressed ones are counted. InterruptStatus/ACK keep their §4.2.2
//    meaning for drivers that read them.
//
// Threads and locks: Read/Write on vCPU threads, NotifyQueue on the event
// loop, CompleteUsed on a device's worker thread. mutex_ serialises the
// state machine, the queues and every call into the device; no device does
// slow work under it (virtio-blk hands requests to its worker, see
// block.h). irq_mutex_ (a leaf) orders InterruptStatus changes with the
// SetLevel calls; it may be taken with mutex_ held, never the other way
// round. InterruptStatus reads and InterruptACK take only irq_mutex_.
// Lock order: mutex_ -> a device's own locks; mutex_ -> irq_mutex_.
//
// Reset (status 0) and destruction: the transport first marks itself
// resetting (notifies are ignored, pending completions become stale by the
// activation epoch), calls device->Quiesce() WITHOUT mutex_ (so a worker
// finishing a request can still take it), then resets under mutex_.
//
// Create with Create(): queued notifications hold a weak reference, so a
// transport destroyed before the event loop drains is simply skipped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/guest_log.h"
#include "base/guest_memory.h"
#include "devices/bus.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"

namespace devices::virtio {

class VirtioMmio : public BusDevice,
                   public VirtioHost,
                   public std::enable_shared_from_this<VirtioMmio> {
 public:
  // Runs a task on the device (event-loop) thread. Null: run inline (tests).
  using Executor = std::function<void(std::function<void()>)>;

  static constexpr uint64_t kSize = 0x200;  // bus length: registers + config
  static constexpr uint64_t kConfigOffset = 0x100;
  static constexpr uint64_t kQueueNotifyOffset = 0x50;  // ioeventfd address
  static constexpr uint32_t kMagic = 0x74726976;        // "virt"
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kVendorId = 0x00564d4d;  // "MMV": this VMM

  // Register offsets (§4.2.2).
  static constexpr uint64_t kRegMagic = 0x000;
  static constexpr uint64_t kRegVersion = 0x004;
  static constexpr uint64_t kRegDeviceId = 0x008;
  static constexpr uint64_t kRegVendorId = 0x00c;
  static constexpr uint64_t kRegDeviceFeatures = 0x010;
  static constexpr uint64_t kRegDeviceFeaturesSel = 0x014;
  static constexpr uint64_t kRegDriverFeatures = 0x020;
  static constexpr uint64_t kRegDriverFeaturesSel = 0x024;
  static constexpr uint64_t kRegQueueSel = 0x030;
  static constexpr uint64_t kRegQueueNumMax = 0x034;
  static constexpr uint64_t kRegQueueNum = 0x038;
  static constexpr uint64_t kRegQueueReady = 0x044;
  static constexpr uint64_t kRegQueueNotify = 0x050;
  static constexpr uint64_t kRegInterruptStatus = 0x060;
  static constexpr uint64_t kRegInterruptAck = 0x064;
  static constexpr uint64_t kRegStatus = 0x070;
  static constexpr uint64_t kRegQueueDescLow = 0x080;
  static constexpr uint64_t kRegQueueDescHigh = 0x084;
  static constexpr uint64_t kRegQueueDriverLow = 0x090;
  static constexpr uint64_t kRegQueueDriverHigh = 0x094;
  static constexpr uint64_t kRegQueueDeviceLow = 0x0a0;
  static constexpr uint64_t kRegQueueDeviceHigh = 0x0a4;
  static constexpr uint64_t kRegShmSel = 0x0ac;
  static constexpr uint64_t kRegShmLenLow = 0x0b0;
  static constexpr uint64_t kRegShmLenHigh = 0x0b4;
  static constexpr uint64_t kRegShmBaseLow = 0x0b8;
  static constexpr uint64_t kRegShmBaseHigh = 0x0bc;
  static constexpr uint64_t kRegConfigGeneration = 0x0fc;

  // `memory` must outlive the transport. `irq` may be null (tests).
  static std::shared_ptr<VirtioMmio> Create(std::shared_ptr<VirtioDevice> device,
                                            const base::GuestMemory& memory,
                                            std::shared_ptr<IrqLine> irq, Executor executor = {});
  ~VirtioMmio() override;

  // Counters for GET /metrics (any thread).
  struct Stats {
    uint64_t notifications = 0;          // queue notifies (ioeventfd or register)
    uint64_t interrupts = 0;             // interrupt events fired (irq->SetLevel(true))
    uint64_t interrupts_suppressed = 0;  // used-buffer events the driver suppressed
    uint64_t guest_errors = 0;           // register misuse (rate-limited warnings)
    uint64_t rejected_chains = 0;        // chains or rings the queues rejected
    uint64_t stale_completions = 0;      // completions dropped (reset since, or NEEDS_RESET)
    uint64_t resets = 0;                 // driver resets (status 0)
    bool needs_reset = false;            // DEVICE_NEEDS_RESET set now
    uint32_t status = 0;                 // device status register
  };
  Stats stats() const;

  // "virtio_mmio.device=4K@0xd0000000:5" (Linux virtio_mmio's cmdline form).
  static std::string CommandLineWord(uint64_t base, uint32_t irq, uint64_t size = 0x1000);

  // BusDevice (vCPU threads).
  std::string_view name() const override { return name_; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  // The driver notified queue `index` (ioeventfd handler; event-loop thread).
  void NotifyQueue(uint32_t index);

  size_t queue_count() const { return queues_.size(); }
  VirtioDevice& device() { return *device_; }

  // Inspection (tests, counters).
  uint32_t status() const;
  uint32_t interrupt_status() const { return interrupt_status_.load(); }
  uint32_t config_generation() const;
  uint64_t guest_errors() const { return log_.count(); }
  uint64_t notifications() const { return notifications_.load(); }
  uint64_t interrupts() const { return interrupts_.load(); }
  Queue::Stats queue_stats(size_t index) const;

  // VirtioHost: called by the device from within a device call (lock held),
  // except Kick and CompleteUsed, which any thread may call.
  void SignalUsed(size_t queue) override;
  void SignalConfigChange() override;
  void QueueFailed(size_t queue, const base::Error& error) override;
  void Kick(size_t queue) override;
  uint64_t epoch() const override { return epoch_; }
  bool CompleteUsed(size_t queue, uint64_t epoch, std::span<const UsedElement> used) override;

 private:
  VirtioMmio(std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory,
             std::shared_ptr<IrqLine> irq, Executor executor);

  uint32_t ReadRegisterLocked(uint64_t offset);
  void WriteRegisterLocked(uint64_t offset, uint32_t value);
  void WriteStatusLocked(uint32_t value);
  void ActivateLocked();
  // Quiesce the device (no lock held), then ResetLocked().
  void ResetDevice();
  void ResetLocked();
  void ProcessQueueLocked(size_t index);
  void NeedsResetLocked(std::string_view why);
  // The selected queue if it may be configured now (§3.1.1), else nullptr.
  Queue* ConfigurableQueueLocked(uint64_t offset);
  void Post(std::function<void()> task);
  // Sets `bits` in InterruptStatus and fires the irq once (any lock state).
  void RaiseInterrupt(uint32_t bits);
  // Clears `bits`; releases the irq when nothing is left.
  void ClearInterrupt(uint32_t bits);

  const std::shared_ptr<VirtioDevice> device_;
  const base::GuestMemory& memory_;
  const std::shared_ptr<IrqLine> irq_;
  const Executor executor_;
  const std::string name_;
  base::GuestLog log_;

  mutable std::mutex mutex_;  // state machine, queues, device calls
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t config_generation_ = 0;
  bool activated_ = false;
  bool resetting_ = false;  // between the start of a reset and its end
  // Without an executor: the thread inside ProcessQueueLocked() and the
  // Kick()s it made meanwhile (mutex_).
  std::atomic<std::thread::id> servicing_thread_{};
  std::vector<size_t> inline_kicks_;
  uint64_t epoch_ = 0;  // bumped at every reset: older completions are stale
  uint64_t stale_completions_ = 0;
  uint64_t resets_ = 0;
  std::vector<Queue> queues_;

  std::atomic<uint32_t> interrupt_status_{0};
  std::atomic<uint64_t> notifications_{0};
  std::atomic<uint64_t> interrupts_{0};
  std::atomic<uint64_t> interrupts_suppressed_{0};
  std::mutex irq_mutex_;  // leaf (may be taken under mutex_)
  bool irq_asserted_ = false;
};

}  // namespace devices::virtio
