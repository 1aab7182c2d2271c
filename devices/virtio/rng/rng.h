// virtio-rng (entropy device, virtio 1.2 §5.4): one request queue of
// device-writable buffers that the device fills with random bytes from the
// host's getrandom(2). No features beyond the common ones, no config space.
//
// Owned by its transport; called under the transport lock on the event-loop
// thread (devices/virtio/virtio.h). A request is served up to kMaxPerRequest
// bytes (the used length says how many); readable buffers in a request are
// ignored and counted.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/guest_log.h"
#include "devices/virtio/single_queue.h"

namespace devices::virtio {

class Rng : public SingleQueueDevice {
 public:
  static constexpr uint32_t kMaxPerRequest = 64 * 1024;
  // Fills the span with random bytes; the default uses getrandom(2).
  using Source = std::function<base::Result<void>(std::span<uint8_t>)>;

  explicit Rng(Source source = {});

  std::string_view name() const override { return "rng"; }
  uint32_t device_id() const override { return kDeviceIdRng; }
  uint64_t device_features() const override { return kCommonFeatures; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  DeviceCounters counters() const override;

  uint64_t bytes_served() const { return bytes_served_.load(); }

 protected:
  ChainResult HandleChain(DescriptorChain&& chain) override;

 private:
  Source source_;
  base::GuestLog log_{"virtio-rng"};
  std::vector<uint8_t> buffer_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_served_{0};
  std::atomic<uint64_t> failures_{0};  // requests answered with 0 bytes
};

// getrandom(2) until `out` is full (retries EINTR and short reads).
[[nodiscard]] base::Result<void> GetRandom(std::span<uint8_t> out);

}  // namespace devices::virtio
