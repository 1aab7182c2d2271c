// A fixed-capacity byte ring that keeps the most recent output.
//
// The serial console appends every byte the guest transmits; a client that
// attaches late first receives Contents() (the backlog). When full, the
// oldest bytes are overwritten. Not thread-safe: the owner (Console) locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vmm {

class RingBuffer {
 public:
  // A capacity of 0 keeps nothing (Append is a no-op, Contents is empty).
  explicit RingBuffer(size_t capacity) : data_(capacity) {}

  void Append(std::span<const uint8_t> bytes);

  // The retained bytes, oldest first.
  std::vector<uint8_t> Contents() const;

  size_t size() const { return size_; }
  size_t capacity() const { return data_.size(); }
  void Clear() {
    size_ = 0;
    head_ = 0;
  }

 private:
  std::vector<uint8_t> data_;
  size_t head_ = 0;  // index where the next byte goes
  size_t size_ = 0;  // bytes retained, <= capacity
};

}  // namespace vmm
