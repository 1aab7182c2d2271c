#include "devices/virtio/single_queue.h"

namespace devices::virtio {

size_t ServiceQueue(Queue& queue, size_t index, VirtioHost& host, const ChainHandler& handle,
                    const ServiceBudget& budget) {
  if (!queue.active()) return 0;
  size_t popped = 0;
  uint64_t bytes = 0;
  bool used = false;
  for (;;) {
    if (popped >= budget.max_chains || bytes >= budget.max_bytes) {
      // Out of budget with the ring possibly not empty: come back in a new
      // round rather than looping here (notifications stay suppressed
      // meanwhile, which is fine: the round is already scheduled).
      host.Kick(index);
      break;
    }
    auto chain = queue.PopOrEnableNotification();
    if (!chain) {
      host.QueueFailed(index, chain.error());
      break;
    }
    if (!chain->has_value()) break;
    ++popped;
    bytes += (*chain)->readable_bytes + (*chain)->writable_bytes;
    const uint16_t head = (*chain)->head;
    const ChainResult result = handle(std::move(**chain));
    if (!result) continue;  // deferred: completed later through CompleteUsed
    if (auto ok = queue.AddUsed(head, *result); !ok) {
      host.QueueFailed(index, ok.error());
      break;
    }
    used = true;
  }
  if (used) host.SignalUsed(index);
  return popped;
}

base::Result<void> SingleQueueDevice::Activate(const base::GuestMemory& memory,
                                               std::span<Queue> queues, uint64_t features,
                                               VirtioHost& host) {
  memory_ = &memory;
  queue_ = &queues[0];
  host_ = &host;
  features_ = features;
  return OnActivate();
}

void SingleQueueDevice::Reset() {
  OnReset();
  memory_ = nullptr;
  queue_ = nullptr;
  host_ = nullptr;
  features_ = 0;
}

void SingleQueueDevice::ProcessQueue(size_t queue) {
  if (queue != 0 || queue_ == nullptr) return;
  ServiceQueue(*queue_, 0, *host_,
               [this](DescriptorChain&& chain) { return HandleChain(std::move(chain)); });
}

}  // namespace devices::virtio
