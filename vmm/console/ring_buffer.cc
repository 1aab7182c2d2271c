#include "vmm/console/ring_buffer.h"

#include <algorithm>
#include <cstring>

namespace vmm {

void RingBuffer::Append(std::span<const uint8_t> bytes) {
  const size_t cap = data_.size();
  if (cap == 0 || bytes.empty()) return;
  // Only the last `cap` bytes of a large append can survive.
  if (bytes.size() >= cap) {
    std::memcpy(data_.data(), bytes.data() + (bytes.size() - cap), cap);
    head_ = 0;
    size_ = cap;
    return;
  }
  size_t first = std::min(bytes.size(), cap - head_);
  std::memcpy(data_.data() + head_, bytes.data(), first);
  std::memcpy(data_.data(), bytes.data() + first, bytes.size() - first);
  head_ = (head_ + bytes.size()) % cap;
  size_ = std::min(cap, size_ + bytes.size());
}

std::vector<uint8_t> RingBuffer::Contents() const {
  std::vector<uint8_t> out(size_);
  if (size_ == 0) return out;
  const size_t cap = data_.size();
  size_t start = (head_ + cap - size_) % cap;
  size_t first = std::min(size_, cap - start);
  std::memcpy(out.data(), data_.data() + start, first);
  std::memcpy(out.data() + first, data_.data(), size_ - first);
  return out;
}

}  // namespace vmm
