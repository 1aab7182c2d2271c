// Fake physical memory for the kernel's pure logic: frames are 4 KiB blocks
// of a host buffer; physical address = offset into it.
#pragma once

#include <cstdint>
#include <vector>

#include "kernel/phys.h"

namespace kernel_test {

class FakePhys final : public kernel::PhysMem, public kernel::FrameSource {
 public:
  explicit FakePhys(size_t frames)
      : mem_(frames * kernel::kPageSize / 8, 0), next_(1), limit_(frames) {}

  void* Frame(uint64_t phys) override { return &mem_[phys / 8]; }
  uint64_t AllocZeroed() override {
    uint64_t f = 0;
    if (!free_.empty()) {
      f = free_.back();
      free_.pop_back();
    } else if (next_ < limit_) {
      f = next_++ * kernel::kPageSize;
    } else {
      return 0;
    }
    for (size_t i = 0; i < 512; ++i) mem_[f / 8 + i] = 0;
    ++live_;
    return f;
  }
  void Free(uint64_t phys) override {
    free_.push_back(phys);
    --live_;
  }
  int64_t live() const { return live_; }

 private:
  std::vector<uint64_t> mem_;
  std::vector<uint64_t> free_;
  uint64_t next_;  // frame 0 never handed out
  uint64_t limit_;
  int64_t live_ = 0;
};

}  // namespace kernel_test
