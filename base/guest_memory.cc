#include "base/guest_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace base {

Result<std::unique_ptr<GuestMemory>> GuestMemory::Create(uint64_t ram_size) {
  if (ram_size == 0 || ram_size % (4 * KiB) != 0) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory size {:#x} must be a non-zero multiple of 4 KiB", ram_size);
  }
  std::unique_ptr<GuestMemory> memory(new GuestMemory());
  memory->ram_size_ = ram_size;
  const uint64_t low = std::min(ram_size, kMmioHoleStart);
  const uint64_t high = ram_size - low;
  auto map = [&](uint64_t gpa, uint64_t size) -> Result<void> {
    void* host = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (host == MAP_FAILED) {
      return MakeErrnoError(ErrorKind::kInternal, "mmap of {} MiB of guest memory at {:#x}",
                            size / MiB, gpa);
    }
    // Transparent huge pages cut EPT/NPT walks; advisory only.
    (void)madvise(host, size, MADV_HUGEPAGE);
    memory->regions_.push_back({gpa, size, static_cast<uint8_t*>(host)});
    return {};
  };
  TRY(map(0, low));
  if (high != 0) TRY(map(kMmioHoleEnd, high));
  return memory;
}

GuestMemory::~GuestMemory() {
  for (const auto& region : regions_) munmap(region.host, region.size);
}

const MemoryRegion* GuestMemory::Find(uint64_t gpa, uint64_t length) const {
  for (const auto& region : regions_) {
    if (gpa < region.guest_phys) continue;
    const uint64_t offset = gpa - region.guest_phys;
    if (offset > region.size) continue;
    if (length > region.size - offset) continue;
    return &region;
  }
  return nullptr;
}

bool GuestMemory::Contains(uint64_t gpa, uint64_t length) const {
  return Find(gpa, length) != nullptr;
}

Result<std::span<uint8_t>> GuestMemory::Span(uint64_t gpa, uint64_t length) const {
  const MemoryRegion* region = Find(gpa, length);
  if (region == nullptr) {
    return MakeError(ErrorKind::kInternal,
                     "guest range [{:#x}, +{:#x}) is outside guest RAM ({} MiB)", gpa, length,
                     ram_size_ / MiB);
  }
  return std::span<uint8_t>(region->host + (gpa - region->guest_phys), length);
}

Result<void> GuestMemory::Read(uint64_t gpa, std::span<uint8_t> out) const {
  auto span = TRY(Span(gpa, out.size()));
  if (!out.empty()) std::memcpy(out.data(), span.data(), out.size());
  return {};
}

Result<void> GuestMemory::Write(uint64_t gpa, std::span<const uint8_t> data) const {
  auto span = TRY(Span(gpa, data.size()));
  if (!data.empty()) std::memcpy(span.data(), data.data(), data.size());
  return {};
}

Result<void> GuestMemory::Fill(uint64_t gpa, uint8_t value, uint64_t length) const {
  auto span = TRY(Span(gpa, length));
  std::fill(span.begin(), span.end(), value);
  return {};
}

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) {
    return MakeError(ErrorKind::kUsage, "invalid size '{}': expected a number with K/M/G suffix",
                     text);
  }
  uint64_t multiplier = 1;
  std::string_view suffix(ptr, static_cast<size_t>(end - ptr));
  if (!suffix.empty()) {
    char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
    std::string_view rest = suffix.substr(1);
    if (rest == "iB" || rest == "ib" || rest == "B" || rest == "b") rest = {};
    if (!rest.empty()) {
      return MakeError(ErrorKind::kUsage, "invalid size '{}': unknown suffix '{}'", text, suffix);
    }
    switch (unit) {
      case 'K':
        multiplier = KiB;
        break;
      case 'M':
        multiplier = MiB;
        break;
      case 'G':
        multiplier = GiB;
        break;
      case 'T':
        multiplier = 1024 * GiB;
        break;
      default:
        return MakeError(ErrorKind::kUsage, "invalid size '{}': unknown suffix '{}'", text, suffix);
    }
  }
  if (value > std::numeric_limits<uint64_t>::max() / multiplier) {
    return MakeError(ErrorKind::kUsage, "invalid size '{}': too large", text);
  }
  return value * multiplier;
}

}  // namespace base
