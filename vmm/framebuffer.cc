#include "vmm/framebuffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/png.h"

namespace vmm {

base::Result<std::unique_ptr<FramebufferMemory>> FramebufferMemory::Create(
    const firmware::Framebuffer& geometry) {
  constexpr uint64_t kPage = 4096;
  const uint64_t size = (geometry.size() + kPage - 1) & ~(kPage - 1);
  base::UniqueFd fd(memfd_create("vmm-framebuffer", MFD_CLOEXEC));
  if (!fd.valid()) {
    return base::MakeError(base::ErrorKind::kInternal, "memfd_create for the framebuffer: {}",
                           std::strerror(errno));
  }
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "ftruncate of the framebuffer memfd to {} bytes: {}", size,
                           std::strerror(errno));
  }
  void* host = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (host == MAP_FAILED) {
    return base::MakeError(base::ErrorKind::kInternal, "mmap of the framebuffer ({} bytes): {}",
                           size, std::strerror(errno));
  }
  return std::unique_ptr<FramebufferMemory>(
      new FramebufferMemory(geometry, std::move(fd), static_cast<uint8_t*>(host), size));
}

FramebufferMemory::~FramebufferMemory() { munmap(host_, mapped_size_); }

base::Result<std::vector<uint8_t>> FramebufferMemory::EncodePng() const {
  return base::EncodeXrgbPng(host_, geometry_.width, geometry_.height, geometry_.pitch);
}

base::Result<void> FramebufferMemory::WritePng(const std::string& path) const {
  return base::WriteXrgbPng(path, host_, geometry_.width, geometry_.height, geometry_.pitch);
}

}  // namespace vmm
