#include "devices/virtio/block/block.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace devices::virtio {
namespace {

// struct virtio_blk_config offsets (§5.2.4).
constexpr uint64_t kConfigCapacity = 0;  // le64, 512-byte sectors
constexpr uint64_t kConfigSegMax = 12;   // le32
constexpr uint64_t kConfigBlkSize = 20;  // le32
constexpr size_t kConfigSize = 24;       // what is filled in; the rest reads 0

}  // namespace

vmm::Result<std::shared_ptr<Block>> Block::Create(const std::string& path, bool read_only) {
  const int fd = open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    return vmm::MakeErrnoError(vmm::ErrorKind::kNoInput, "disk image {}: cannot open{}", path,
                               read_only ? "" : " for reading and writing");
  }
  if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    auto error = vmm::MakeErrnoError(vmm::ErrorKind::kConfig,
                                     "disk image {}: locked by another process", path);
    close(fd);
    return error;
  }
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) {
    auto error = vmm::MakeErrnoError(vmm::ErrorKind::kNoInput, "disk image {}: size", path);
    close(fd);
    return error;
  }
  const auto bytes = static_cast<uint64_t>(size);
  if (bytes % kSectorSize != 0) {
    spdlog::warn("disk image {}: size {} is not a multiple of 512; the last {} bytes are unused",
                 path, bytes, bytes % kSectorSize);
  }
  return std::shared_ptr<Block>(new Block(fd, path, read_only, bytes / kSectorSize));
}

Block::Block(int fd, std::string path, bool read_only, uint64_t capacity_sectors)
    : fd_(fd),
      path_(std::move(path)),
      read_only_(read_only),
      capacity_sectors_(capacity_sectors),
      log_("virtio-blk " + path_) {
  // The serial number: the image's base name, at most 20 bytes.
  const size_t slash = path_.find_last_of('/');
  id_ = path_.substr(slash == std::string::npos ? 0 : slash + 1).substr(0, kIdBytes);
}

Block::~Block() { close(fd_); }

uint64_t Block::device_features() const {
  return kCommonFeatures | kFeatureSegMax | kFeatureBlkSize | kFeatureFlush |
         (read_only_ ? kFeatureRo : 0);
}

void Block::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  std::array<uint8_t, kConfigSize> config{};
  const uint64_t capacity = capacity_sectors_;
  // Chains carry header and status besides the data: seg_max leaves them room.
  const uint32_t seg_max = kQueueSize - 2;
  const auto blk_size = static_cast<uint32_t>(kSectorSize);
  std::memcpy(config.data() + kConfigCapacity, &capacity, sizeof(capacity));
  std::memcpy(config.data() + kConfigSegMax, &seg_max, sizeof(seg_max));
  std::memcpy(config.data() + kConfigBlkSize, &blk_size, sizeof(blk_size));
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < config.size() ? config[at] : 0;
  }
}

vmm::Result<void> Block::Activate(const vmm::GuestMemory& memory, std::span<Queue> queues, uint64_t,
                                  VirtioHost& host) {
  memory_ = &memory;
  queue_ = &queues[0];
  host_ = &host;
  return {};
}

void Block::Reset() {
  memory_ = nullptr;
  queue_ = nullptr;
  host_ = nullptr;
}

void Block::ProcessQueue(size_t queue) {
  if (queue != 0 || queue_ == nullptr || !queue_->active()) return;
  bool used = false;
  for (;;) {
    auto chain = queue_->PopOrEnableNotification();
    if (!chain) {
      host_->QueueFailed(0, chain.error());
      break;
    }
    if (!chain->has_value()) break;
    const uint32_t written = HandleRequest(**chain);
    if (auto ok = queue_->AddUsed((*chain)->head, written); !ok) {
      host_->QueueFailed(0, ok.error());
      break;
    }
    used = true;
  }
  if (used) host_->SignalUsed(0);
}

uint32_t Block::HandleRequest(const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) {
    log_.Warn("request {} has no writable status byte; dropped", chain.head);
    ++counters_.io_errors;
    return 0;
  }
  uint8_t status = kStatusIoErr;
  uint32_t data_written = 0;
  RequestHeader header{};
  if (chain.readable_bytes < sizeof(header)) {
    log_.Warn("request {}: header of {} bytes (16 needed)", chain.head, chain.readable_bytes);
  } else if (auto ok = ReadSegments(*memory_, chain.readable, 0,
                                    std::span(reinterpret_cast<uint8_t*>(&header), sizeof(header)));
             !ok) {
    log_.Warn("request {}: {}", chain.head, ok.error().message());
  } else {
    status = Execute(chain, header, &data_written);
  }
  if (status == kStatusIoErr) ++counters_.io_errors;
  if (status == kStatusUnsupp) ++counters_.unsupported;
  // §5.2.6: the status is the last byte of the device-writable part.
  if (auto ok =
          WriteSegments(*memory_, chain.writable, chain.writable_bytes - 1, std::span(&status, 1));
      !ok) {
    log_.Warn("request {}: status byte: {}", chain.head, ok.error().message());
    return data_written;
  }
  return data_written + 1;
}

uint8_t Block::Execute(const DescriptorChain& chain, const RequestHeader& header,
                       uint32_t* data_written) {
  // Data is what lies between header and status.
  const uint64_t in_length = chain.writable_bytes - 1;
  const uint64_t out_length = chain.readable_bytes - sizeof(RequestHeader);
  auto check_range = [&](uint64_t length) -> bool {
    if (length % kSectorSize != 0) {
      log_.Warn("request {}: length {} is not a multiple of 512", chain.head, length);
      return false;
    }
    if (header.sector > capacity_sectors_ ||
        length / kSectorSize > capacity_sectors_ - header.sector) {
      log_.Warn("request {}: sectors [{}, +{}) beyond the disk ({} sectors)", chain.head,
                header.sector, length / kSectorSize, capacity_sectors_);
      return false;
    }
    return true;
  };
  switch (header.type) {
    case kTypeIn: {
      if (!check_range(in_length)) return kStatusIoErr;
      const auto data = SliceSegments(chain.writable, 0, in_length);
      if (auto ok = DoIo(data, header.sector * kSectorSize, false); !ok) {
        log_.Warn("read: {}", ok.error().ToString());
        return kStatusIoErr;
      }
      ++counters_.reads;
      counters_.bytes_read += in_length;
      *data_written = static_cast<uint32_t>(in_length);
      return kStatusOk;
    }
    case kTypeOut: {
      if (read_only_) return kStatusIoErr;  // §5.2.6.2
      if (!check_range(out_length)) return kStatusIoErr;
      const auto data = SliceSegments(chain.readable, sizeof(RequestHeader), out_length);
      if (auto ok = DoIo(data, header.sector * kSectorSize, true); !ok) {
        log_.Warn("write: {}", ok.error().ToString());
        return kStatusIoErr;
      }
      ++counters_.writes;
      counters_.bytes_written += out_length;
      return kStatusOk;
    }
    case kTypeFlush:
      ++counters_.flushes;
      if (fdatasync(fd_) != 0) {
        log_.Warn("fdatasync: {}", std::strerror(errno));
        return kStatusIoErr;
      }
      return kStatusOk;
    case kTypeGetId: {
      std::array<uint8_t, kIdBytes> id{};
      std::memcpy(id.data(), id_.data(), id_.size());
      const auto length = static_cast<size_t>(std::min<uint64_t>(in_length, kIdBytes));
      if (auto ok = WriteSegments(*memory_, chain.writable, 0, std::span(id.data(), length)); !ok) {
        return kStatusIoErr;
      }
      *data_written = static_cast<uint32_t>(length);
      return kStatusOk;
    }
    default:
      log_.Warn("request {}: unsupported type {}", chain.head, header.type);
      return kStatusUnsupp;
  }
}

vmm::Result<void> Block::DoIo(std::span<const Segment> segments, uint64_t offset, bool write) {
  std::vector<iovec> iov;
  iov.reserve(segments.size());
  for (const Segment& segment : segments) {
    auto span = TRY(memory_->Span(segment.addr, segment.len));
    iov.push_back({span.data(), span.size()});
  }
  size_t first = 0;
  while (first < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    const ssize_t done = write ? pwritev(fd_, &iov[first], count, static_cast<off_t>(offset))
                               : preadv(fd_, &iov[first], count, static_cast<off_t>(offset));
    if (done < 0) {
      if (errno == EINTR) continue;
      return vmm::MakeErrnoError(vmm::ErrorKind::kInternal, "{} {} at {:#x}",
                                 write ? "pwritev" : "preadv", path_, offset);
    }
    if (done == 0) {
      return vmm::MakeError(vmm::ErrorKind::kInternal, "{}: end of file at {:#x}", path_, offset);
    }
    // Advance past what was transferred (short transfers resume mid-iovec).
    offset += static_cast<uint64_t>(done);
    auto left = static_cast<size_t>(done);
    while (first < iov.size() && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (left != 0) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return {};
}

}  // namespace devices::virtio
