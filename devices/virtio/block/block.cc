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

#include "base/sandbox/seccomp.h"
#include "base/unique_fd.h"

namespace devices::virtio {
namespace {

// struct virtio_blk_config offsets (§5.2.4).
constexpr uint64_t kConfigCapacity = 0;  // le64, 512-byte sectors
constexpr uint64_t kConfigSizeMax = 8;   // le32
constexpr uint64_t kConfigSegMax = 12;   // le32
constexpr uint64_t kConfigBlkSize = 20;  // le32
constexpr size_t kConfigSize = 24;       // what is filled in; the rest reads 0

// The image file: preadv/pwritev, fdatasync. Owns (and flock()s) the fd.
class FileBackend : public BlockBackend {
 public:
  FileBackend(base::UniqueFd fd, std::string path, uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}
  uint64_t size_bytes() const override { return size_; }
  base::Result<void> ReadAt(std::span<const iovec> iov, uint64_t offset) override {
    return Transfer(iov, offset, false);
  }
  base::Result<void> WriteAt(std::span<const iovec> iov, uint64_t offset) override {
    return Transfer(iov, offset, true);
  }
  base::Result<void> Sync() override {
    if (fdatasync(fd_.get()) != 0)
      return base::MakeErrnoError(base::ErrorKind::kInternal, "fdatasync {}", path_);
    return {};
  }

 private:
  base::Result<void> Transfer(std::span<const iovec> in, uint64_t offset, bool write) {
    std::vector<iovec> iov(in.begin(), in.end());
    size_t first = 0;
    while (first < iov.size()) {
      const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
      const ssize_t done = write
                               ? pwritev(fd_.get(), &iov[first], count, static_cast<off_t>(offset))
                               : preadv(fd_.get(), &iov[first], count, static_cast<off_t>(offset));
      if (done < 0) {
        if (errno == EINTR) continue;
        return base::MakeErrnoError(base::ErrorKind::kInternal, "{} {} at {:#x}",
                                    write ? "pwritev" : "preadv", path_, offset);
      }
      if (done == 0) {
        return base::MakeError(base::ErrorKind::kInternal, "{}: end of file at {:#x}", path_,
                               offset);
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

  const base::UniqueFd fd_;
  const std::string path_;
  const uint64_t size_;
};

}  // namespace

base::Result<std::shared_ptr<Block>> Block::Create(const std::string& path, bool read_only) {
  base::UniqueFd fd(open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd.valid()) {
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "disk image {}: cannot open{}", path,
                                read_only ? "" : " for reading and writing");
  }
  if (flock(fd.get(), (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    auto error = base::MakeErrnoError(base::ErrorKind::kConfig,
                                      "disk image {}: locked by another process", path);
    return error;
  }
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0) {
    auto error = base::MakeErrnoError(base::ErrorKind::kNoInput, "disk image {}: size", path);
    return error;
  }
  const auto bytes = static_cast<uint64_t>(size);
  if (bytes % kSectorSize != 0) {
    spdlog::warn("disk image {}: size {} is not a multiple of 512; the last {} bytes are unused",
                 path, bytes, bytes % kSectorSize);
  }
  return CreateWithBackend(std::make_unique<FileBackend>(std::move(fd), path, bytes), path,
                           read_only);
}

std::shared_ptr<Block> Block::CreateWithBackend(std::unique_ptr<BlockBackend> backend,
                                                const std::string& path, bool read_only) {
  return std::shared_ptr<Block>(new Block(std::move(backend), path, read_only));
}

Block::Block(std::unique_ptr<BlockBackend> backend, std::string path, bool read_only)
    : backend_(std::move(backend)),
      path_(std::move(path)),
      read_only_(read_only),
      capacity_sectors_(backend_->size_bytes() / kSectorSize),
      log_("virtio-blk " + path_) {
  // The serial number: the image's base name, at most 20 bytes.
  const size_t slash = path_.find_last_of('/');
  id_ = path_.substr(slash == std::string::npos ? 0 : slash + 1).substr(0, kIdBytes);
  worker_ = std::thread([this] { WorkerLoop(); });
}

Block::~Block() {
  {
    std::lock_guard lock(worker_mutex_);
    stop_ = true;
    dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
    pending_.clear();
  }
  work_cv_.notify_all();
  worker_.join();
}

uint64_t Block::device_features() const {
  return kCommonFeatures | kFeatureSizeMax | kFeatureSegMax | kFeatureBlkSize | kFeatureFlush |
         (read_only_ ? kFeatureRo : 0);
}

void Block::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  std::array<uint8_t, kConfigSize> config{};
  const uint64_t capacity = capacity_sectors_;
  const uint32_t seg_max = kSegMax;
  const uint32_t size_max = kSizeMax;
  const auto blk_size = static_cast<uint32_t>(kSectorSize);
  std::memcpy(config.data() + kConfigCapacity, &capacity, sizeof(capacity));
  std::memcpy(config.data() + kConfigSizeMax, &size_max, sizeof(size_max));
  std::memcpy(config.data() + kConfigSegMax, &seg_max, sizeof(seg_max));
  std::memcpy(config.data() + kConfigBlkSize, &blk_size, sizeof(blk_size));
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < config.size() ? config[at] : 0;
  }
}

ChainResult Block::HandleChain(DescriptorChain&& chain) {
  // Event-loop thread, transport lock held: hand off, never do I/O here.
  {
    std::lock_guard lock(worker_mutex_);
    pending_.push_back(Request{std::move(chain), memory(), host(), host()->epoch()});
  }
  work_cv_.notify_one();
  return kDeferred;
}

void Block::OnReset() {
  // The transport quiesced us before this; drop anything that slipped in.
  std::lock_guard lock(worker_mutex_);
  dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
  pending_.clear();
}

void Block::Quiesce() {
  std::unique_lock lock(worker_mutex_);
  dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
  pending_.clear();
  // The request in progress stops at its next piece (DoIo); a backend call
  // that hangs (a dead network disk) must not hold the vCPU forever.
  abort_ = true;
  if (!idle_cv_.wait_for(lock, quiesce_deadline_, [this] { return !busy_; })) {
    quiesce_timeouts_.fetch_add(1, std::memory_order_relaxed);
    log_.Warn("reset: the request in progress did not finish within {} ms; not waiting longer",
              quiesce_deadline_.count());
  }
}

void Block::QuiesceForTeardown() {
  std::unique_lock lock(worker_mutex_);
  dropped_.fetch_add(pending_.size(), std::memory_order_relaxed);
  pending_.clear();
  abort_ = true;  // the request in progress stops at its next piece
  idle_cv_.wait(lock, [this] { return !busy_; });
}

void Block::WaitIdle() {
  std::unique_lock lock(worker_mutex_);
  idle_cv_.wait(lock, [this] { return !busy_ && pending_.empty(); });
}

void Block::WorkerLoop() {
  // Its file is open and its queue empty: confined from here (docs/security.md).
  base::sandbox::EnterThreadOrDie(base::sandbox::ThreadKind::kBlockWorker);
  std::unique_lock lock(worker_mutex_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (stop_) break;
    Request request = std::move(pending_.front());
    pending_.pop_front();
    busy_ = true;
    abort_ = false;
    lock.unlock();
    const uint32_t written = HandleRequest(*request.memory, request.chain);
    const UsedElement used{request.chain.head, written};
    if (request.host->CompleteUsed(0, request.epoch, std::span(&used, 1))) {
      completed_.fetch_add(1, std::memory_order_relaxed);
    }
    lock.lock();
    busy_ = false;
    idle_cv_.notify_all();
  }
  busy_ = false;
  idle_cv_.notify_all();
}

Block::Counters Block::block_counters() const {
  Counters c;
  c.reads = reads_.load(std::memory_order_relaxed);
  c.writes = writes_.load(std::memory_order_relaxed);
  c.flushes = flushes_.load(std::memory_order_relaxed);
  c.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  c.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  c.io_errors = io_errors_.load(std::memory_order_relaxed);
  c.unsupported = unsupported_.load(std::memory_order_relaxed);
  c.completed = completed_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  c.over_limit = over_limit_.load(std::memory_order_relaxed);
  c.quiesce_timeouts = quiesce_timeouts_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(worker_mutex_);
    c.in_flight = pending_.size() + (busy_ ? 1 : 0);
  }
  return c;
}

DeviceCounters Block::counters() const {
  const Counters c = block_counters();
  DeviceCounters counters;
  counters.requests = c.completed;
  counters.bytes_read = c.bytes_read;
  counters.bytes_written = c.bytes_written;
  counters.errors = c.io_errors + c.unsupported;
  counters.extra = {{"reads", c.reads},
                    {"writes", c.writes},
                    {"flushes", c.flushes},
                    {"unsupported", c.unsupported},
                    {"dropped_by_reset", c.dropped},
                    {"in_flight", c.in_flight},
                    {"over_limit", c.over_limit},
                    {"quiesce_timeouts", c.quiesce_timeouts}};
  return counters;
}

uint32_t Block::HandleRequest(const base::GuestMemory& memory, const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) {
    log_.Warn("request {} has no writable status byte; dropped", chain.head);
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  uint8_t status = kStatusIoErr;
  uint32_t data_written = 0;
  RequestHeader header{};
  if (chain.readable_bytes < sizeof(header)) {
    log_.Warn("request {}: header of {} bytes (16 needed)", chain.head, chain.readable_bytes);
  } else if (auto ok = ReadSegments(memory, chain.readable, 0,
                                    std::span(reinterpret_cast<uint8_t*>(&header), sizeof(header)));
             !ok) {
    log_.Warn("request {}: {}", chain.head, ok.error().message());
  } else {
    status = Execute(memory, chain, header, &data_written);
  }
  if (status == kStatusIoErr) io_errors_.fetch_add(1, std::memory_order_relaxed);
  if (status == kStatusUnsupp) unsupported_.fetch_add(1, std::memory_order_relaxed);
  // §5.2.6: the status is the last byte of the device-writable part.
  if (auto ok =
          WriteSegments(memory, chain.writable, chain.writable_bytes - 1, std::span(&status, 1));
      !ok) {
    log_.Warn("request {}: status byte: {}", chain.head, ok.error().message());
    return data_written;
  }
  return data_written + 1;
}

uint8_t Block::Execute(const base::GuestMemory& memory, const DescriptorChain& chain,
                       const RequestHeader& header, uint32_t* data_written) {
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
  // The advertised limits (§5.2.4 seg_max, size_max), enforced: a request
  // over them is refused before any host I/O.
  auto check_limits = [&](std::span<const Segment> data) -> bool {
    if (data.size() > kSegMax) {
      log_.Warn("request {}: {} data segments (seg_max {})", chain.head, data.size(), kSegMax);
      over_limit_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    for (const Segment& segment : data) {
      if (segment.len > kSizeMax) {
        log_.Warn("request {}: segment of {} bytes (size_max {})", chain.head, segment.len,
                  kSizeMax);
        over_limit_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    }
    return true;
  };
  switch (header.type) {
    case kTypeIn: {
      const auto data = SliceSegments(chain.writable, 0, in_length);
      if (!check_limits(data) || !check_range(in_length)) return kStatusIoErr;
      if (auto ok = DoIo(memory, data, header.sector * kSectorSize, false); !ok) {
        log_.Warn("read: {}", ok.error().ToString());
        return kStatusIoErr;
      }
      reads_.fetch_add(1, std::memory_order_relaxed);
      bytes_read_.fetch_add(in_length, std::memory_order_relaxed);
      *data_written = static_cast<uint32_t>(in_length);
      return kStatusOk;
    }
    case kTypeOut: {
      if (read_only_) return kStatusIoErr;  // §5.2.6.2
      const auto data = SliceSegments(chain.readable, sizeof(RequestHeader), out_length);
      if (!check_limits(data) || !check_range(out_length)) return kStatusIoErr;
      if (auto ok = DoIo(memory, data, header.sector * kSectorSize, true); !ok) {
        log_.Warn("write: {}", ok.error().ToString());
        return kStatusIoErr;
      }
      writes_.fetch_add(1, std::memory_order_relaxed);
      bytes_written_.fetch_add(out_length, std::memory_order_relaxed);
      return kStatusOk;
    }
    case kTypeFlush:
      flushes_.fetch_add(1, std::memory_order_relaxed);
      if (auto ok = backend_->Sync(); !ok) {
        log_.Warn("flush: {}", ok.error().ToString());
        return kStatusIoErr;
      }
      return kStatusOk;
    case kTypeGetId: {
      std::array<uint8_t, kIdBytes> id{};
      std::memcpy(id.data(), id_.data(), id_.size());
      const auto length = static_cast<size_t>(std::min<uint64_t>(in_length, kIdBytes));
      if (auto ok = WriteSegments(memory, chain.writable, 0, std::span(id.data(), length)); !ok) {
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

base::Result<void> Block::DoIo(const base::GuestMemory& memory, std::span<const Segment> segments,
                               uint64_t offset, bool write) {
  // In pieces of at most kIoPieceBytes, so a reset (Quiesce) waits for one
  // piece, not for the whole request.
  uint64_t total = 0;
  for (const Segment& segment : segments) total += segment.len;
  for (uint64_t done = 0; done < total; done += kIoPieceBytes) {
    {
      std::lock_guard lock(worker_mutex_);
      if (abort_) {
        return base::MakeError(base::ErrorKind::kInternal, "aborted by a device reset");
      }
    }
    std::vector<iovec> iov;
    for (const Segment& piece :
         SliceSegments(segments, done, std::min<uint64_t>(kIoPieceBytes, total - done))) {
      auto span = TRY(memory.Span(piece.addr, piece.len));
      iov.push_back({span.data(), span.size()});
    }
    TRY(write ? backend_->WriteAt(iov, offset + done) : backend_->ReadAt(iov, offset + done));
  }
  return {};
}

}  // namespace devices::virtio
