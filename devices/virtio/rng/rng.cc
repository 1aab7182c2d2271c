#include "devices/virtio/rng/rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace devices::virtio {

vmm::Result<void> GetRandom(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = getrandom(out.data() + done, out.size() - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return vmm::MakeErrnoError(vmm::ErrorKind::kInternal, "getrandom");
    }
    done += static_cast<size_t>(got);
  }
  return {};
}

Rng::Rng(Source source) : source_(source ? std::move(source) : Source(GetRandom)) {}

void Rng::ReadConfig(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});  // §5.4.4: no configuration
}

vmm::Result<void> Rng::Activate(const vmm::GuestMemory& memory, std::span<Queue> queues, uint64_t,
                                VirtioHost& host) {
  memory_ = &memory;
  queue_ = &queues[0];
  host_ = &host;
  return {};
}

void Rng::Reset() {
  memory_ = nullptr;
  queue_ = nullptr;
  host_ = nullptr;
}

void Rng::ProcessQueue(size_t queue) {
  if (queue != 0 || queue_ == nullptr || !queue_->active()) return;
  std::vector<uint8_t> buffer;
  bool used = false;
  for (;;) {
    auto chain = queue_->PopOrEnableNotification();
    if (!chain) {
      host_->QueueFailed(0, chain.error());
      break;
    }
    if (!chain->has_value()) break;
    const DescriptorChain& request = **chain;
    if (!request.readable.empty()) {
      log_.Warn("request {} has {} device-readable bytes; ignored", request.head,
                request.readable_bytes);
    }
    const auto size =
        static_cast<uint32_t>(std::min<uint64_t>(request.writable_bytes, kMaxPerRequest));
    buffer.resize(size);
    uint32_t served = 0;
    if (auto ok = source_(buffer); !ok) {
      log_.Warn("no entropy: {}", ok.error().ToString());
    } else if (auto written = WriteSegments(*memory_, request.writable, 0, buffer); !written) {
      log_.Warn("request {}: {}", request.head, written.error().message());
    } else {
      served = size;
    }
    bytes_served_ += served;
    if (auto ok = queue_->AddUsed(request.head, served); !ok) {
      host_->QueueFailed(0, ok.error());
      break;
    }
    used = true;
  }
  if (used) host_->SignalUsed(0);
}

}  // namespace devices::virtio
