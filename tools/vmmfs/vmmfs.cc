#include "tools/vmmfs/vmmfs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmmfs {
namespace {

std::unexpected<Error> Fail(int status, std::string message) {
  return std::unexpected(Error{status, std::move(message)});
}

std::unexpected<Error> SysFail(int status, const std::string& what) {
  return Fail(status, fmt::format("{}: {}", what, std::strerror(errno)));
}

// pread/pwrite of the whole range (short transfers retried).
Result<void> ReadAt(int fd, const std::string& path, void* data, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysFail(kExitIoErr, fmt::format("{}: read at {:#x}", path, offset));
    if (got == 0) {
      return Fail(kExitDataErr,
                  fmt::format("{}: image ends before offset {:#x} (truncated)", path, offset));
    }
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return {};
}

Result<void> WriteAt(int fd, const std::string& path, const void* data, size_t n, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t put = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return SysFail(kExitIoErr, fmt::format("{}: write at {:#x}", path, offset));
    p += put;
    n -= static_cast<size_t>(put);
    offset += static_cast<uint64_t>(put);
  }
  return {};
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return Fail(kExitUsage, "size: empty");
  uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return Fail(kExitUsage, fmt::format("size '{}': too large", text));
    value = value * 10 + digit;
  }
  if (i == 0) return Fail(kExitUsage, fmt::format("size '{}': not a number", text));
  uint64_t unit = 1;
  if (i + 1 == text.size()) {
    switch (text[i]) {
      case 'K':
      case 'k':
        unit = 1ull << 10;
        break;
      case 'M':
      case 'm':
        unit = 1ull << 20;
        break;
      case 'G':
      case 'g':
        unit = 1ull << 30;
        break;
      default:
        return Fail(kExitUsage, fmt::format("size '{}': unknown suffix (K, M or G)", text));
    }
  } else if (i != text.size()) {
    return Fail(kExitUsage, fmt::format("size '{}': not a number", text));
  }
  if (value > UINT64_MAX / unit) return Fail(kExitUsage, fmt::format("size '{}': too large", text));
  return value * unit;
}

Result<void> CheckName(std::string_view name) {
  if (name.empty() || name.size() > VMMFS_NAME_MAX ||
      vmmfs_name_length(name.data(), name.size()) != name.size()) {
    return Fail(kExitUsage, fmt::format("file name '{}': must be 1..{} characters from '!' to '~', "
                                        "no '/'",
                                        name, VMMFS_NAME_MAX));
  }
  return {};
}

Result<void> Mkfs(const std::string& path, uint64_t size) {
  constexpr uint64_t kMin = 16 * 1024;
  if (size % VMMFS_SECTOR != 0 || size < kMin) {
    return Fail(kExitUsage, fmt::format("size {}: must be a multiple of 512 and at least {} bytes",
                                        size, kMin));
  }
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return SysFail(kExitCantCreate, path);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return SysFail(kExitIoErr, fmt::format("{}: set size {}", path, size));
  }
  std::vector<uint8_t> head((1 + VMMFS_DIR_SECTORS) * VMMFS_SECTOR, 0);
  vmmfs_super super;
  vmmfs_make_super(&super, size / VMMFS_SECTOR);
  std::memcpy(head.data(), &super, sizeof(super));
  if (auto r = WriteAt(fd.get(), path, head.data(), head.size(), 0); !r) return r;
  if (::fdatasync(fd.get()) != 0) return SysFail(kExitIoErr, fmt::format("{}: fdatasync", path));
  return {};
}

Result<Volume> Volume::Open(const std::string& path, bool writable) {
  base::UniqueFd fd(::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) return SysFail(errno == ENOENT ? kExitNoInput : kExitIoErr, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return SysFail(kExitIoErr, path);
  const uint64_t disk_sectors = static_cast<uint64_t>(st.st_size) / VMMFS_SECTOR;
  Volume v(std::move(fd), path);
  if (disk_sectors == 0)
    return Fail(kExitDataErr, fmt::format("{}: smaller than one sector", path));
  if (auto r = ReadAt(v.fd_.get(), path, &v.super_, sizeof(v.super_), 0); !r) {
    return std::unexpected(r.error());
  }
  if (const int p = vmmfs_check_super(&v.super_, disk_sectors); p != VMMFS_OK) {
    return Fail(kExitDataErr, fmt::format("{}: superblock: {}", path, vmmfs_problem(p)));
  }
  v.dir_.resize(v.super_.dir_sectors * VMMFS_ENTRIES_PER_SECTOR);
  if (auto r = ReadAt(v.fd_.get(), path, v.dir_.data(), v.dir_.size() * sizeof(vmmfs_entry),
                      VMMFS_SECTOR);
      !r) {
    return std::unexpected(r.error());
  }
  uint32_t bad = 0;
  if (const int p =
          vmmfs_check_dir(v.dir_.data(), static_cast<uint32_t>(v.dir_.size()), &v.super_, &bad);
      p != VMMFS_OK) {
    return Fail(kExitDataErr, fmt::format("{}: directory entry {} (offset {:#x}): {}", path, bad,
                                          VMMFS_SECTOR + bad * VMMFS_ENTRY_SIZE, vmmfs_problem(p)));
  }
  return v;
}

std::vector<FileInfo> Volume::List() const {
  std::vector<FileInfo> out;
  for (const vmmfs_entry& e : dir_) {
    if (e.name[0] == 0) continue;
    out.push_back(FileInfo{std::string(e.name, vmmfs_name_length(e.name, sizeof(e.name))), e.size,
                           e.first_sector, e.alloc_sectors, e.data_checksum});
  }
  return out;
}

uint64_t Volume::FreeSectors() const {
  uint64_t used = 0;
  for (const vmmfs_entry& e : dir_) {
    if (e.name[0] != 0) used += e.alloc_sectors;
  }
  return super_.total_sectors - super_.data_start - used;
}

uint32_t Volume::Find(std::string_view name) const {
  for (uint32_t i = 0; i < dir_.size(); ++i) {
    const vmmfs_entry& e = dir_[i];
    if (e.name[0] != 0 &&
        std::string_view(e.name, vmmfs_name_length(e.name, sizeof(e.name))) == name)
      return i;
  }
  return VMMFS_NO_ENTRY;
}

Result<std::vector<uint8_t>> Volume::Read(std::string_view name) const {
  const uint32_t i = Find(name);
  if (i == VMMFS_NO_ENTRY) return Fail(kExitNoInput, fmt::format("{}: no file '{}'", path_, name));
  const vmmfs_entry& e = dir_[i];
  std::vector<uint8_t> data(e.size);
  if (auto r = ReadAt(fd_.get(), path_, data.data(), data.size(), e.first_sector * VMMFS_SECTOR);
      !r) {
    return std::unexpected(r.error());
  }
  const uint32_t sum = vmmfs_fnv1a(VMMFS_FNV_INIT, data.data(), data.size());
  if (sum != e.data_checksum) {
    return Fail(kExitDataErr,
                fmt::format("{}: file '{}': checksum {:#010x}, directory says {:#010x}", path_,
                            name, sum, e.data_checksum));
  }
  return data;
}

Result<void> Volume::Sync() {
  if (::fdatasync(fd_.get()) != 0) return SysFail(kExitIoErr, fmt::format("{}: fdatasync", path_));
  return {};
}

Result<void> Volume::StoreEntry(uint32_t slot) {
  const uint32_t sector = slot / VMMFS_ENTRIES_PER_SECTOR;
  if (auto r = WriteAt(fd_.get(), path_, &dir_[sector * VMMFS_ENTRIES_PER_SECTOR], VMMFS_SECTOR,
                       (1 + sector) * uint64_t{VMMFS_SECTOR});
      !r) {
    return r;
  }
  return Sync();
}

Result<void> Volume::Write(std::string_view name, std::span<const uint8_t> data) {
  if (auto r = CheckName(name); !r) return r;
  const uint64_t need = (data.size() + VMMFS_SECTOR - 1) / VMMFS_SECTOR;
  if (need > UINT32_MAX) return Fail(kExitCantCreate, fmt::format("'{}': too large", name));
  const uint32_t old = Find(name);
  uint32_t slot = old;
  for (uint32_t i = 0; i < dir_.size() && slot == VMMFS_NO_ENTRY; ++i) {
    if (dir_[i].name[0] == 0) slot = i;
  }
  if (slot == VMMFS_NO_ENTRY) {
    return Fail(kExitCantCreate, fmt::format("{}: directory full ({} files)", path_, dir_.size()));
  }
  const uint64_t first =
      vmmfs_find_free(dir_.data(), static_cast<uint32_t>(dir_.size()), &super_, need);
  if (first == 0) {
    return Fail(kExitCantCreate, fmt::format("{}: no free extent of {} sectors for '{}' ({} free)",
                                             path_, need, name, FreeSectors()));
  }
  std::vector<uint8_t> padded(need * VMMFS_SECTOR, 0);
  if (!data.empty()) std::memcpy(padded.data(), data.data(), data.size());
  if (auto r = WriteAt(fd_.get(), path_, padded.data(), padded.size(), first * VMMFS_SECTOR); !r)
    return r;
  if (auto r = Sync(); !r) return r;
  vmmfs_make_entry(&dir_[slot], name.data(), static_cast<uint32_t>(name.size()), first, data.size(),
                   static_cast<uint32_t>(need),
                   vmmfs_fnv1a(VMMFS_FNV_INIT, data.data(), data.size()));
  return StoreEntry(slot);
}

Result<void> Volume::Remove(std::string_view name) {
  const uint32_t i = Find(name);
  if (i == VMMFS_NO_ENTRY) return Fail(kExitNoInput, fmt::format("{}: no file '{}'", path_, name));
  dir_[i] = vmmfs_entry{};
  return StoreEntry(i);
}

}  // namespace vmmfs
