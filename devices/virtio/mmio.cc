#include "devices/virtio/mmio.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace devices::virtio {
namespace {

uint32_t Low(uint64_t value) { return static_cast<uint32_t>(value); }
uint32_t High(uint64_t value) { return static_cast<uint32_t>(value >> 32); }
uint64_t SetLow(uint64_t value, uint32_t low) { return (value & ~0xffffffffull) | low; }
uint64_t SetHigh(uint64_t value, uint32_t high) {
  return (value & 0xffffffffull) | (static_cast<uint64_t>(high) << 32);
}

}  // namespace

std::shared_ptr<VirtioMmio> VirtioMmio::Create(std::shared_ptr<VirtioDevice> device,
                                               const base::GuestMemory& memory,
                                               std::shared_ptr<IrqLine> irq, Executor executor) {
  return std::shared_ptr<VirtioMmio>(
      new VirtioMmio(std::move(device), memory, std::move(irq), std::move(executor)));
}

VirtioMmio::VirtioMmio(std::shared_ptr<VirtioDevice> device, const base::GuestMemory& memory,
                       std::shared_ptr<IrqLine> irq, Executor executor)
    : device_(std::move(device)),
      memory_(memory),
      irq_(std::move(irq)),
      executor_(std::move(executor)),
      name_(fmt::format("virtio-mmio-{}", device_->name())),
      log_(name_) {
  for (size_t i = 0; i < device_->queue_count(); ++i) {
    queues_.emplace_back(std::min(device_->queue_max_size(i), kMaxQueueSize));
  }
}

VirtioMmio::~VirtioMmio() {
  // No chain of a device handed off to a worker may complete into a dead
  // transport: quiesce (without the lock), then reset.
  {
    std::lock_guard lock(mutex_);
    resetting_ = true;
    ++epoch_;
  }
  device_->QuiesceForTeardown();
  std::lock_guard lock(mutex_);
  if (activated_) device_->Reset();
  activated_ = false;
}

std::string VirtioMmio::CommandLineWord(uint64_t base, uint32_t irq, uint64_t size) {
  if (size % 1024 == 0)
    return fmt::format("virtio_mmio.device={}K@{:#x}:{}", size / 1024, base, irq);
  return fmt::format("virtio_mmio.device={}@{:#x}:{}", size, base, irq);
}

void VirtioMmio::Read(const BusAccess& access, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  if (access.offset >= kConfigOffset) {
    const uint64_t offset = access.offset - kConfigOffset;
    std::lock_guard lock(mutex_);
    device_->ReadConfig(offset, data);
    return;
  }
  if (data.size() != 4 || access.offset % 4 != 0) {
    log_.Warn("{}-byte read at register offset {:#x} (32-bit aligned only)", data.size(),
              access.offset);
    return;
  }
  uint32_t value = 0;
  if (access.offset == kRegInterruptStatus) {
    value = interrupt_status_.load();
  } else {
    std::lock_guard lock(mutex_);
    value = ReadRegisterLocked(access.offset);
  }
  std::memcpy(data.data(), &value, 4);  // x86 is little-endian, as virtio (§4.2.2)
}

void VirtioMmio::Write(const BusAccess& access, std::span<const uint8_t> data) {
  if (access.offset >= kConfigOffset) {
    std::lock_guard lock(mutex_);
    device_->WriteConfig(access.offset - kConfigOffset, data);
    return;
  }
  if (data.size() != 4 || access.offset % 4 != 0) {
    log_.Warn("{}-byte write at register offset {:#x} (32-bit aligned only)", data.size(),
              access.offset);
    return;
  }
  uint32_t value = 0;
  std::memcpy(&value, data.data(), 4);
  if (access.offset == kRegQueueNotify) {
    // No ioeventfd for this address: hand the notify to the event loop so the
    // vCPU does no device work (§4.2.3.3; docs/architecture.md threads).
    std::weak_ptr<VirtioMmio> weak = weak_from_this();
    Post([weak, value] {
      if (auto self = weak.lock()) self->NotifyQueue(value);
    });
    return;
  }
  if (access.offset == kRegInterruptAck) {
    ClearInterrupt(value);
    return;
  }
  if (access.offset == kRegStatus && value == 0) {
    ResetDevice();  // §4.2.2: writing 0 resets the device
    return;
  }
  std::lock_guard lock(mutex_);
  WriteRegisterLocked(access.offset, value);
}

uint32_t VirtioMmio::ReadRegisterLocked(uint64_t offset) {
  const Queue* queue = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  switch (offset) {
    case kRegMagic:
      return kMagic;
    case kRegVersion:
      return kVersion;
    case kRegDeviceId:
      return device_->device_id();
    case kRegVendorId:
      return kVendorId;
    case kRegDeviceFeatures: {
      const uint64_t features = device_->device_features();
      if (device_features_sel_ == 0) return Low(features);
      if (device_features_sel_ == 1) return High(features);
      return 0;
    }
    case kRegQueueNumMax:
      return queue ? queue->max_size() : 0;  // 0: the queue does not exist
    case kRegQueueNum:
      return queue ? queue->size() : 0;
    case kRegQueueReady:
      return queue && queue->ready() ? 1 : 0;
    case kRegStatus:
      return status_;
    case kRegQueueDescLow:
      return queue ? Low(queue->desc_table()) : 0;
    case kRegQueueDescHigh:
      return queue ? High(queue->desc_table()) : 0;
    case kRegQueueDriverLow:
      return queue ? Low(queue->avail_ring()) : 0;
    case kRegQueueDriverHigh:
      return queue ? High(queue->avail_ring()) : 0;
    case kRegQueueDeviceLow:
      return queue ? Low(queue->used_ring()) : 0;
    case kRegQueueDeviceHigh:
      return queue ? High(queue->used_ring()) : 0;
    case kRegShmLenLow:
    case kRegShmLenHigh:
    case kRegShmBaseLow:
    case kRegShmBaseHigh:
      return 0xffffffff;  // §4.2.2: no shared memory region
    case kRegConfigGeneration:
      return config_generation_;
    default:
      log_.Warn("read of write-only or unknown register {:#x}", offset);
      return 0;
  }
}

Queue* VirtioMmio::ConfigurableQueueLocked(uint64_t offset) {
  if (queue_sel_ >= queues_.size()) {
    log_.Warn("register {:#x} written for queue {}, which does not exist", offset, queue_sel_);
    return nullptr;
  }
  // §3.1.1 step 7: queues are set up after FEATURES_OK and before DRIVER_OK;
  // §4.2.2.3: not while the queue is ready.
  if (!(status_ & kStatusFeaturesOk) || (status_ & kStatusDriverOk) ||
      queues_[queue_sel_].ready()) {
    log_.Warn("register {:#x} written for queue {} in status {:#x}{}", offset, queue_sel_, status_,
              queues_[queue_sel_].ready() ? " while it is ready" : "");
    return nullptr;
  }
  return &queues_[queue_sel_];
}

void VirtioMmio::WriteRegisterLocked(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kRegDeviceFeaturesSel:
      device_features_sel_ = value;
      return;
    case kRegDriverFeatures:
      // §3.1.1 step 5: features are written after DRIVER, before FEATURES_OK.
      if (!(status_ & kStatusDriver) || (status_ & kStatusFeaturesOk)) {
        log_.Warn("driver features written in status {:#x}", status_);
        return;
      }
      if (driver_features_sel_ == 0) {
        driver_features_ = SetLow(driver_features_, value);
      } else if (driver_features_sel_ == 1) {
        driver_features_ = SetHigh(driver_features_, value);
      } else if (value != 0) {
        log_.Warn("driver features page {} = {:#x}: no such features", driver_features_sel_, value);
      }
      return;
    case kRegDriverFeaturesSel:
      driver_features_sel_ = value;
      return;
    case kRegQueueSel:
      queue_sel_ = value;
      return;
    case kRegQueueNum:
      if (Queue* queue = ConfigurableQueueLocked(offset)) {
        queue->set_size(static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff)));
        if (value > 0xffff) queue->set_size(0);  // invalid; refused at QueueReady
      }
      return;
    case kRegQueueReady:
      if (value == 0) {
        // Disabling is allowed until DRIVER_OK (Linux does it on teardown).
        if (queue_sel_ < queues_.size() && !(status_ & kStatusDriverOk)) {
          queues_[queue_sel_].set_ready(false);
        } else {
          log_.Warn("QueueReady=0 for queue {} in status {:#x}", queue_sel_, status_);
        }
        return;
      }
      if (Queue* queue = ConfigurableQueueLocked(offset)) {
        if (!queue->SizeIsValid(queue->size())) {
          log_.Warn("queue {} made ready with size {} (max {}, power of 2 required)", queue_sel_,
                    queue->size(), queue->max_size());
          return;
        }
        queue->set_ready(true);
      }
      return;
    case kRegStatus:
      WriteStatusLocked(value);
      return;
    case kRegQueueDescLow:
    case kRegQueueDescHigh:
    case kRegQueueDriverLow:
    case kRegQueueDriverHigh:
    case kRegQueueDeviceLow:
    case kRegQueueDeviceHigh: {
      Queue* queue = ConfigurableQueueLocked(offset);
      if (queue == nullptr) return;
      if (offset == kRegQueueDescLow) queue->set_desc_table(SetLow(queue->desc_table(), value));
      if (offset == kRegQueueDescHigh) queue->set_desc_table(SetHigh(queue->desc_table(), value));
      if (offset == kRegQueueDriverLow) queue->set_avail_ring(SetLow(queue->avail_ring(), value));
      if (offset == kRegQueueDriverHigh) queue->set_avail_ring(SetHigh(queue->avail_ring(), value));
      if (offset == kRegQueueDeviceLow) queue->set_used_ring(SetLow(queue->used_ring(), value));
      if (offset == kRegQueueDeviceHigh) queue->set_used_ring(SetHigh(queue->used_ring(), value));
      return;
    }
    case kRegShmSel:
      return;  // no shared memory regions; selecting one is harmless
    default:
      log_.Warn("write {:#x} to read-only or unknown register {:#x}", value, offset);
  }
}

void VirtioMmio::WriteStatusLocked(uint32_t value) {
  // value 0 (reset) never gets here: Write() routes it to ResetDevice().
  const uint32_t old = status_;
  // §2.1.2: the driver MUST NOT clear a status bit (NEEDS_RESET is the
  // device's, so a driver echoing it back or not is fine).
  if ((old & ~kStatusNeedsReset) & ~value) {
    log_.Warn("status write {:#x} clears bits of {:#x}; ignored", value, old);
    return;
  }
  const uint32_t added = value & ~old & ~kStatusNeedsReset;
  uint32_t next = old;
  if (added & kStatusAcknowledge) next |= kStatusAcknowledge;
  if (added & kStatusDriver) {
    if (next & kStatusAcknowledge) {
      next |= kStatusDriver;
    } else {
      log_.Warn("DRIVER set before ACKNOWLEDGE; ignored");
    }
  }
  if (added & kStatusFeaturesOk) {
    const uint64_t offered = device_->device_features();
    if (!(next & kStatusDriver)) {
      log_.Warn("FEATURES_OK set before DRIVER; ignored");
    } else if (driver_features_ & ~offered) {
      // §2.2.1: the device refuses FEATURES_OK; the driver sees it unset.
      log_.Warn("FEATURES_OK refused: driver accepted {:#x}, not offered (offered {:#x})",
                driver_features_ & ~offered, offered);
    } else if (!(driver_features_ & kFeatureVersion1)) {
      log_.Warn(
          "FEATURES_OK refused: VIRTIO_F_VERSION_1 not accepted (legacy drivers are not "
          "supported by virtio-mmio version 2)");
    } else {
      next |= kStatusFeaturesOk;
    }
  }
  if (added & kStatusFailed) {
    next |= kStatusFailed;
    log_.Warn("driver set FAILED (counted and rate-limited like guest errors)");
  }
  const bool activate = (added & kStatusDriverOk) != 0;
  if (activate && !(next & kStatusFeaturesOk)) {
    log_.Warn("DRIVER_OK set before FEATURES_OK; ignored");
  } else if (activate) {
    next |= kStatusDriverOk;
  }
  if (added &
      ~(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk | kStatusFailed)) {
    log_.Warn("status write {:#x} sets unknown bits", value);
  }
  status_ = next;
  if (activate && (next & kStatusDriverOk)) ActivateLocked();
}

void VirtioMmio::ActivateLocked() {
  const bool event_idx = (driver_features_ & kFeatureEventIdx) != 0;
  const bool indirect = (driver_features_ & kFeatureIndirectDesc) != 0;
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (!queues_[i].ready()) continue;
    if (auto ok = queues_[i].Activate(memory_, event_idx, indirect); !ok) {
      NeedsResetLocked(fmt::format("queue {}: {}", i, ok.error().message()));
      return;
    }
  }
  if (auto ok = device_->Activate(memory_, queues_, driver_features_, *this); !ok) {
    NeedsResetLocked(fmt::format("activation failed: {}", ok.error().ToString()));
    return;
  }
  activated_ = true;
  // Buffers made available before DRIVER_OK (e.g. receive buffers added
  // during probe) are not announced again: look at every queue once.
  // With an executor this is posted to the event loop; inline (tests) it
  // runs here, as the lock is already held.
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (!queues_[i].ready()) continue;
    if (executor_) {
      Kick(i);
    } else if (!(status_ & kStatusNeedsReset)) {
      ProcessQueueLocked(i);
    }
  }
}

void VirtioMmio::ResetDevice() {
  {
    std::lock_guard lock(mutex_);
    resetting_ = true;  // no new device work from here on
    ++epoch_;           // completions of the old activation are stale
  }
  // Without mutex_: a worker finishing a request needs it for CompleteUsed.
  device_->Quiesce();
  std::lock_guard lock(mutex_);
  ResetLocked();
  resetting_ = false;
}

void VirtioMmio::ResetLocked() {
  if (activated_) device_->Reset();
  activated_ = false;
  // epoch_ was bumped by ResetDevice() before Quiesce().
  ++resets_;
  for (Queue& queue : queues_) queue.Reset();
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  driver_features_ = 0;
  ClearInterrupt(~0u);  // §4.2.2: reset clears InterruptStatus
}

void VirtioMmio::NeedsResetLocked(std::string_view why) {
  log_.Warn("device needs reset: {}", why);
  if (status_ & kStatusNeedsReset) return;
  status_ |= kStatusNeedsReset;
  // §2.1.2: with NEEDS_RESET set, the device sends a config change notification
  // (only once DRIVER_OK is set).
  if (status_ & kStatusDriverOk) RaiseInterrupt(kInterruptConfigChange);
}

void VirtioMmio::NotifyQueue(uint32_t index) {
  notifications_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  if (!activated_ || resetting_ || (status_ & kStatusNeedsReset)) return;
  if (index >= queues_.size() || !queues_[index].ready()) {
    log_.Warn("notify for queue {}, which is not set up", index);
    return;
  }
  ProcessQueueLocked(index);
}

void VirtioMmio::ProcessQueueLocked(size_t index) {
  if (executor_) {
    device_->ProcessQueue(index);
    return;
  }
  // No executor (tests): a Kick() from inside the device call cannot run
  // inline (mutex_ is held), so it is remembered and run after it returns.
  servicing_thread_ = std::this_thread::get_id();
  device_->ProcessQueue(index);
  while (!inline_kicks_.empty() && activated_ && !resetting_ && !(status_ & kStatusNeedsReset)) {
    const size_t next = inline_kicks_.front();
    inline_kicks_.erase(inline_kicks_.begin());
    device_->ProcessQueue(next);
  }
  inline_kicks_.clear();
  servicing_thread_ = std::thread::id();
}

void VirtioMmio::SignalUsed(size_t queue) {
  if (queue >= queues_.size()) return;
  if (queues_[queue].NeedsInterrupt()) {
    RaiseInterrupt(kInterruptUsedBuffer);
  } else {
    interrupts_suppressed_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool VirtioMmio::CompleteUsed(size_t queue, uint64_t epoch, std::span<const UsedElement> used) {
  std::lock_guard lock(mutex_);
  // Stale: the driver reset the device since the chains were popped; or the
  // device needs a reset (its rings are not trusted any more).
  if (epoch != epoch_ || !activated_ || queue >= queues_.size() || (status_ & kStatusNeedsReset)) {
    stale_completions_ += used.size();
    return false;
  }
  bool added = false;
  for (const UsedElement& element : used) {
    if (auto ok = queues_[queue].AddUsed(static_cast<uint16_t>(element.id), element.len); !ok) {
      QueueFailed(queue, ok.error());
      return false;
    }
    added = true;
  }
  if (added) SignalUsed(queue);
  return true;
}

void VirtioMmio::SignalConfigChange() {
  ++config_generation_;
  RaiseInterrupt(kInterruptConfigChange);
}

void VirtioMmio::QueueFailed(size_t queue, const base::Error& error) {
  NeedsResetLocked(fmt::format("queue {}: {}", queue, error.message()));
}

void VirtioMmio::Kick(size_t queue) {
  if (!executor_ && servicing_thread_ == std::this_thread::get_id()) {
    inline_kicks_.push_back(queue);  // mutex_ held by this thread
    return;
  }
  std::weak_ptr<VirtioMmio> weak = weak_from_this();
  const auto index = static_cast<uint32_t>(queue);
  Post([weak, index] {
    if (auto self = weak.lock()) self->NotifyQueue(index);
  });
}

void VirtioMmio::Post(std::function<void()> task) {
  if (executor_) {
    executor_(std::move(task));
  } else {
    task();
  }
}

void VirtioMmio::RaiseInterrupt(uint32_t bits) {
  std::lock_guard lock(irq_mutex_);
  interrupt_status_.fetch_or(bits);
  interrupts_.fetch_add(1, std::memory_order_relaxed);
  irq_asserted_ = true;
  if (irq_) irq_->SetLevel(true);  // one event, one edge
}

void VirtioMmio::ClearInterrupt(uint32_t bits) {
  std::lock_guard lock(irq_mutex_);
  const uint32_t left = interrupt_status_.fetch_and(~bits) & ~bits;
  if (left != 0 || !irq_asserted_) return;
  irq_asserted_ = false;
  if (irq_) irq_->SetLevel(false);
}

uint32_t VirtioMmio::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

uint32_t VirtioMmio::config_generation() const {
  std::lock_guard lock(mutex_);
  return config_generation_;
}

VirtioMmio::Stats VirtioMmio::stats() const {
  Stats stats;
  stats.notifications = notifications_.load(std::memory_order_relaxed);
  stats.interrupts = interrupts_.load(std::memory_order_relaxed);
  stats.interrupts_suppressed = interrupts_suppressed_.load(std::memory_order_relaxed);
  stats.guest_errors = log_.count();
  std::lock_guard lock(mutex_);
  for (const Queue& queue : queues_) {
    stats.rejected_chains += queue.stats().rejected();
  }
  stats.stale_completions = stale_completions_;
  stats.resets = resets_;
  stats.needs_reset = (status_ & kStatusNeedsReset) != 0;
  stats.status = status_;
  return stats;
}

Queue::Stats VirtioMmio::queue_stats(size_t index) const {
  std::lock_guard lock(mutex_);
  return index < queues_.size() ? queues_[index].stats() : Queue::Stats{};
}

}  // namespace devices::virtio
