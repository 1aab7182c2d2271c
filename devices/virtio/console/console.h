// virtio-console (virtio 1.2 §5.3), port 0 only: no MULTIPORT, no SIZE.
// Queue 0 (receiveq) carries host input to the guest, queue 1 (transmitq)
// guest output to the host. VIRTIO_CONSOLE_F_EMERG_WRITE is offered: a write
// to config field emerg_wr (offset 8) outputs one byte before the queues
// are up (§5.3.4).
//
// Output: `output` is called on the event-loop thread, under the transport
// lock, with each transmit buffer's bytes (transmitq is serviced by
// ServiceQueue(), single_queue.h); it must not call back into this device
// or its transport.
// Input: QueueInput() (any thread, typically the event loop) appends to an
// unbounded host queue; bytes move into receive buffers as the driver
// provides them, so nothing is dropped (flow control, as the UART).
//
// Locks: the transport lock, then input_mutex_ (guards the input queue and
// the host pointer). QueueInput takes only input_mutex_ and then Kick()s
// the transport without holding it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "base/guest_log.h"
#include "devices/virtio/single_queue.h"

namespace devices::virtio {

class Console : public VirtioDevice {
 public:
  static constexpr uint64_t kFeatureEmergWrite = 1ull << 2;  // VIRTIO_CONSOLE_F_EMERG_WRITE
  static constexpr size_t kReceiveQueue = 0;
  static constexpr size_t kTransmitQueue = 1;
  static constexpr uint64_t kConfigEmergWr = 8;  // struct virtio_console_config.emerg_wr

  explicit Console(std::function<void(std::span<const uint8_t>)> output);

  // Host -> guest bytes. Any thread; never drops.
  void QueueInput(std::span<const uint8_t> bytes);
  // Bytes queued that the guest has not received yet.
  size_t PendingInput() const;

  std::string_view name() const override { return "console"; }
  uint32_t device_id() const override { return kDeviceIdConsole; }
  uint64_t device_features() const override { return kCommonFeatures | kFeatureEmergWrite; }
  size_t queue_count() const override { return 2; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override;
  base::Result<void> Activate(const base::GuestMemory& memory, std::span<Queue> queues,
                              uint64_t features, VirtioHost& host) override;
  void Reset() override;
  void ProcessQueue(size_t queue) override;
  DeviceCounters counters() const override;

  uint64_t bytes_out() const { return bytes_out_.load(); }
  uint64_t bytes_in() const { return bytes_in_.load(); }

 private:
  void Receive();
  void Transmit();

  const std::function<void(std::span<const uint8_t>)> output_;
  base::GuestLog log_{"virtio-console"};
  const base::GuestMemory* memory_ = nullptr;
  std::span<Queue> queues_;
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> transmitted_{0};  // transmit buffers returned
  std::atomic<uint64_t> received_{0};     // receive buffers filled

  mutable std::mutex input_mutex_;
  std::deque<uint8_t> input_;
  VirtioHost* host_ = nullptr;  // guarded by input_mutex_ (QueueInput reads it)
};

}  // namespace devices::virtio
