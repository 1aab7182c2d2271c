// The linear framebuffer's memory (docs/framebuffer.md): a memfd of
// pitch x height bytes (page-rounded), mapped shared into vmm and into the
// guest at firmware::Framebuffer::address as a KVM memory slot of its own
// (not guest RAM: the loaders never write it, e820 does not list it). The
// memfd lets another process (a viewer) map the same pixels. Screenshots read
// it from any thread; a guest drawing meanwhile may tear one frame, never
// more.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "firmware/boot.h"

namespace vmm {

class FramebufferMemory {
 public:
  // kInternal naming the call when memfd_create, ftruncate or mmap fails.
  [[nodiscard]] static base::Result<std::unique_ptr<FramebufferMemory>> Create(
      const firmware::Framebuffer& geometry);
  ~FramebufferMemory();
  FramebufferMemory(const FramebufferMemory&) = delete;
  FramebufferMemory& operator=(const FramebufferMemory&) = delete;

  const firmware::Framebuffer& geometry() const { return geometry_; }
  uint8_t* host() const { return host_; }
  uint64_t mapped_size() const { return mapped_size_; }  // page-rounded
  int fd() const { return fd_.get(); }

  // The screen now as a PNG (base/png.h).
  [[nodiscard]] base::Result<std::vector<uint8_t>> EncodePng() const;
  // Written to `path`; kNoInput naming the path when it cannot be written.
  [[nodiscard]] base::Result<void> WritePng(const std::string& path) const;

 private:
  FramebufferMemory(firmware::Framebuffer geometry, base::UniqueFd fd, uint8_t* host,
                    uint64_t mapped_size)
      : geometry_(geometry), fd_(std::move(fd)), host_(host), mapped_size_(mapped_size) {}
  firmware::Framebuffer geometry_;
  base::UniqueFd fd_;
  uint8_t* host_;
  uint64_t mapped_size_;
};

}  // namespace vmm
