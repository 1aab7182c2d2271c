// vmmfs volumes on the host: the library behind the `vmmfs` tool
// (tools/vmmfs/main.cc) and its unit tests. The on-disk format and its
// checks are guest-kernel/abi/vmmfs.h, the same header the guest's files
// service compiles, so both sides agree byte for byte.
//
// Everything read from an image is checked (vmmfs_check_super,
// vmmfs_check_dir, the data checksum) before it is used; a bad image is an
// error naming the image and the problem, never a crash.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "abi/vmmfs.h"
#include "base/unique_fd.h"

namespace vmmfs {

// Exit statuses of the tool (sysexits.h).
inline constexpr int kExitUsage = 64;       // EX_USAGE: bad arguments, bad name or size
inline constexpr int kExitDataErr = 65;     // EX_DATAERR: not a vmmfs image, corrupt image/file
inline constexpr int kExitNoInput = 66;     // EX_NOINPUT: missing image/host file, no such name
inline constexpr int kExitCantCreate = 73;  // EX_CANTCREAT: no space, directory full, output
inline constexpr int kExitIoErr = 74;       // EX_IOERR: a read or write of the image failed

struct Error {
  int status;
  std::string message;
};
template <typename T>
using Result = std::expected<T, Error>;

struct FileInfo {
  std::string name;
  uint64_t size;
  uint64_t first_sector;
  uint32_t alloc_sectors;
  uint32_t checksum;
};

// Parses "4096", "64K", "1M", "2G" (bytes; K/M/G are powers of 1024).
Result<uint64_t> ParseSize(std::string_view text);

// Creates (or truncates) `path` as a sparse file of `size` bytes (a
// multiple of 512, at least 16 KiB) holding an empty volume.
Result<void> Mkfs(const std::string& path, uint64_t size);

// An opened, checked volume.
class Volume {
 public:
  static Result<Volume> Open(const std::string& path, bool writable);

  std::vector<FileInfo> List() const;
  // Free sectors in the data area.
  uint64_t FreeSectors() const;
  uint64_t TotalSectors() const { return super_.total_sectors; }
  // The file's bytes, checked against its checksum.
  Result<std::vector<uint8_t>> Read(std::string_view name) const;
  // Creates or replaces `name` (data first, in a new extent, then the
  // directory sector; fdatasync after each).
  Result<void> Write(std::string_view name, std::span<const uint8_t> data);
  Result<void> Remove(std::string_view name);

 private:
  Volume(base::UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  uint32_t Find(std::string_view name) const;
  Result<void> StoreEntry(uint32_t slot);
  Result<void> Sync();

  base::UniqueFd fd_;
  std::string path_;
  vmmfs_super super_{};
  std::vector<vmmfs_entry> dir_;
};

// Checks a file name (1..31 characters 0x21..0x7e, no '/').
Result<void> CheckName(std::string_view name);

}  // namespace vmmfs
