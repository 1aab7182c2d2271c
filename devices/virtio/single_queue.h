// The queue-servicing loop every device here shares, and a base class for
// devices with one request queue (virtio-blk, virtio-rng).
//
// ServiceQueue() pops the available chains (re-enabling notifications when
// the ring looks empty, §2.7.10) up to a work budget, hands each to the device's handler, puts
// the chains the handler finished at once into the used ring and signals
// the driver once at the end. A handler may instead keep a chain (return
// kDeferred) and complete it later from another thread with
// VirtioHost::CompleteUsed(). A broken ring goes to VirtioHost::QueueFailed
// (DEVICE_NEEDS_RESET); nothing else is popped.
//
// SingleQueueDevice keeps what Activate() hands over (guest memory, the
// queue, the host, the features) until Reset(), and routes ProcessQueue(0)
// through ServiceQueue() to HandleChain(). Like every VirtioDevice its
// methods run under the transport lock (devices/virtio/virtio.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"

namespace devices::virtio {

// What a chain handler returns: the used length of a chain finished now,
// or kDeferred for a chain the device completes later.
using ChainResult = std::optional<uint32_t>;
inline constexpr ChainResult kDeferred = std::nullopt;

using ChainHandler = std::function<ChainResult(DescriptorChain&& chain)>;

// How much one ServiceQueue() call may do (docs/virtio.md "Hostile
// guests"): after max_chains chains, or once the chains popped hold
// max_bytes, it stops and asks VirtioHost::Kick() for another round, so the
// event loop runs other handlers in between instead of serving one busy
// queue forever.
struct ServiceBudget {
  size_t max_chains = 64;
  uint64_t max_bytes = 1ull << 20;
};

// Services queue `index` (see above) within `budget`. Returns how many
// chains were popped.
size_t ServiceQueue(Queue& queue, size_t index, VirtioHost& host, const ChainHandler& handle,
                    const ServiceBudget& budget = {});

class SingleQueueDevice : public VirtioDevice {
 public:
  size_t queue_count() const final { return 1; }
  [[nodiscard]] base::Result<void> Activate(const base::GuestMemory& memory,
                                            std::span<Queue> queues, uint64_t features,
                                            VirtioHost& host) final;
  void Reset() final;
  void ProcessQueue(size_t queue) final;

 protected:
  // One chain of queue 0 (transport lock held; memory() and host() valid).
  virtual ChainResult HandleChain(DescriptorChain&& chain) = 0;
  // Hooks around activation and reset, for devices with state of their own.
  virtual base::Result<void> OnActivate() { return {}; }
  virtual void OnReset() {}

  const base::GuestMemory* memory() const { return memory_; }
  VirtioHost* host() const { return host_; }
  uint64_t features() const { return features_; }

 private:
  const base::GuestMemory* memory_ = nullptr;
  Queue* queue_ = nullptr;
  VirtioHost* host_ = nullptr;
  uint64_t features_ = 0;
};

}  // namespace devices::virtio
