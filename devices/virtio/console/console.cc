#include "devices/virtio/console/console.h"

#include <algorithm>
#include <vector>

namespace devices::virtio {

Console::Console(std::function<void(std::span<const uint8_t>)> output)
    : output_(std::move(output)) {}

void Console::QueueInput(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  VirtioHost* host = nullptr;
  {
    std::lock_guard lock(input_mutex_);
    input_.insert(input_.end(), bytes.begin(), bytes.end());
    host = host_;
  }
  if (host != nullptr) host->Kick(kReceiveQueue);
}

size_t Console::PendingInput() const {
  std::lock_guard lock(input_mutex_);
  return input_.size();
}

void Console::ReadConfig(uint64_t, std::span<uint8_t> data) {
  // §5.3.4: cols, rows, max_nr_ports are only valid with SIZE/MULTIPORT,
  // which are not offered; emerg_wr is write-only. All read as zero.
  std::fill(data.begin(), data.end(), uint8_t{0});
}

void Console::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != kConfigEmergWr || data.empty()) {
    log_.Warn("config write of {} bytes at offset {:#x} ignored", data.size(), offset);
    return;
  }
  // §5.3.4: emerg_wr takes one character (the low byte of the write).
  bytes_out_.fetch_add(1, std::memory_order_relaxed);
  if (output_) output_(data.first(1));
}

base::Result<void> Console::Activate(const base::GuestMemory& memory, std::span<Queue> queues,
                                     uint64_t, VirtioHost& host) {
  memory_ = &memory;
  queues_ = queues;
  std::lock_guard lock(input_mutex_);
  host_ = &host;
  return {};
}

void Console::Reset() {
  memory_ = nullptr;
  queues_ = {};
  std::lock_guard lock(input_mutex_);
  host_ = nullptr;  // queued input is kept for the next activation
}

void Console::ProcessQueue(size_t queue) {
  if (memory_ == nullptr) return;
  if (queue == kReceiveQueue) Receive();
  if (queue == kTransmitQueue) Transmit();
}

void Console::Receive() {
  Queue& queue = queues_[kReceiveQueue];
  if (!queue.active()) return;
  VirtioHost* host = nullptr;
  bool used = false;
  std::vector<uint8_t> chunk;
  {
    std::lock_guard lock(input_mutex_);
    host = host_;
    while (!input_.empty()) {
      auto chain = queue.PopOrEnableNotification();
      if (!chain) {
        host->QueueFailed(kReceiveQueue, chain.error());
        break;
      }
      if (!chain->has_value()) break;  // no buffer: input waits (flow control)
      const DescriptorChain& buffer = **chain;
      const size_t count =
          static_cast<size_t>(std::min<uint64_t>(buffer.writable_bytes, input_.size()));
      chunk.assign(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(count));
      uint32_t written = 0;
      if (auto ok = WriteSegments(*memory_, buffer.writable, 0, chunk); ok) {
        input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(count));
        written = static_cast<uint32_t>(count);
        bytes_in_.fetch_add(count, std::memory_order_relaxed);
      } else {
        log_.Warn("receive buffer {}: {}", buffer.head, ok.error().message());
      }
      if (auto ok = queue.AddUsed(buffer.head, written); !ok) {
        host->QueueFailed(kReceiveQueue, ok.error());
        break;
      }
      received_.fetch_add(1, std::memory_order_relaxed);
      used = true;
    }
  }
  if (used) host->SignalUsed(kReceiveQueue);
}

void Console::Transmit() {
  Queue& queue = queues_[kTransmitQueue];
  VirtioHost* host = nullptr;
  {
    std::lock_guard lock(input_mutex_);
    host = host_;
  }
  if (host == nullptr) return;
  ServiceQueue(queue, kTransmitQueue, *host, [this](DescriptorChain&& buffer) -> ChainResult {
    if (!buffer.writable.empty()) {
      log_.Warn("transmit buffer {} has {} device-writable bytes; ignored", buffer.head,
                buffer.writable_bytes);
    }
    // Straight from guest memory, one segment at a time: no copy, and a
    // huge buffer costs no host allocation.
    for (const Segment& segment : buffer.readable) {
      auto span = memory_->Span(segment.addr, segment.len);
      if (!span) {
        log_.Warn("transmit buffer {}: {}", buffer.head, span.error().message());
        break;
      }
      bytes_out_.fetch_add(span->size(), std::memory_order_relaxed);
      if (output_) output_(*span);
    }
    transmitted_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  });
}

DeviceCounters Console::counters() const {
  DeviceCounters counters;
  counters.requests =
      transmitted_.load(std::memory_order_relaxed) + received_.load(std::memory_order_relaxed);
  counters.bytes_read = bytes_in_.load(std::memory_order_relaxed);
  counters.bytes_written = bytes_out_.load(std::memory_order_relaxed);
  counters.extra = {{"pending_input", PendingInput()}};
  return counters;
}

}  // namespace devices::virtio
