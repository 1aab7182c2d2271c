#include "devices/virtio/rng/rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace devices::virtio {

base::Result<void> GetRandom(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = getrandom(out.data() + done, out.size() - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return base::MakeErrnoError(base::ErrorKind::kInternal, "getrandom");
    }
    done += static_cast<size_t>(got);
  }
  return {};
}

Rng::Rng(Source source) : source_(source ? std::move(source) : Source(GetRandom)) {}

void Rng::ReadConfig(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});  // §5.4.4: no configuration
}

ChainResult Rng::HandleChain(DescriptorChain&& request) {
  if (!request.readable.empty()) {
    log_.Warn("request {} has {} device-readable bytes; ignored", request.head,
              request.readable_bytes);
  }
  const auto size =
      static_cast<uint32_t>(std::min<uint64_t>(request.writable_bytes, kMaxPerRequest));
  buffer_.resize(size);
  uint32_t served = 0;
  if (auto ok = source_(buffer_); !ok) {
    log_.Warn("no entropy: {}", ok.error().ToString());
  } else if (auto written = WriteSegments(*memory(), request.writable, 0, buffer_); !written) {
    log_.Warn("request {}: {}", request.head, written.error().message());
  } else {
    served = size;
  }
  if (served == 0 && size != 0) failures_.fetch_add(1, std::memory_order_relaxed);
  requests_.fetch_add(1, std::memory_order_relaxed);
  bytes_served_.fetch_add(served, std::memory_order_relaxed);
  return served;
}

DeviceCounters Rng::counters() const {
  DeviceCounters counters;
  counters.requests = requests_.load(std::memory_order_relaxed);
  counters.bytes_read = bytes_served_.load(std::memory_order_relaxed);
  counters.errors = failures_.load(std::memory_order_relaxed);
  return counters;
}

}  // namespace devices::virtio
