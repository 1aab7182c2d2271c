// IPC protocol of the `files` service (user/files.cc), shared with its
// clients (user/shell.cc). Labels and the service's own status codes; the
// table is in docs/guest-drivers.md, "The files service".
#pragma once

#include <stdint.h>

namespace files {

// Labels (request -> reply). Names travel in the IPC buffer.
inline constexpr uint64_t kList = 1;    // w0 index -> w0 0, w1 size, w2 first sector,
                                        // w3 data checksum; buffer = name (or kErrNotFound)
inline constexpr uint64_t kRead = 2;    // name; w0 offset -> w0 status, w1 size, w2 bytes
                                        // returned (<= 1024) in the buffer
inline constexpr uint64_t kWrite = 3;   // w0 name length; buffer = name then data -> w0 status
inline constexpr uint64_t kAppend = 4;  // as kWrite, the data added at the end
inline constexpr uint64_t kDelete = 5;  // name -> w0 status
inline constexpr uint64_t kSync = 6;    // -> w0 status (virtio-blk FLUSH)
inline constexpr uint64_t kInfo = 7;    // -> w0 status, w1 files, w2 free sectors, w3 total

// Status codes besides 0 and the abi::kErr* ones (kErrNotFound: no such
// file, kErrInvalidArgument: bad name or request).
inline constexpr int64_t kErrNoFs = -100;      // no disk, or it holds no valid vmmfs volume
inline constexpr int64_t kErrCorrupt = -101;   // a file's checksum does not match its data
inline constexpr int64_t kErrNoSpace = -102;   // no free extent large enough
inline constexpr int64_t kErrDirFull = -103;   // no free directory slot
inline constexpr int64_t kErrIo = -104;        // the disk answered IOERR/UNSUPP or timed out
inline constexpr int64_t kErrReadOnly = -105;  // the disk is read-only
inline constexpr int64_t kErrTooBig = -106;    // larger than the service's 64 KiB buffer

inline const char* ErrorText(int64_t e) {
  switch (e) {
    case kErrNoFs:
      return "no file system";
    case kErrCorrupt:
      return "checksum mismatch (corrupt file)";
    case kErrNoSpace:
      return "no space";
    case kErrDirFull:
      return "directory full";
    case kErrIo:
      return "I/O error";
    case kErrReadOnly:
      return "read-only disk";
    case kErrTooBig:
      return "file too big (64 KiB at most)";
    case -6:
      return "no such file";
    case -4:
      return "invalid name or request";
    default:
      return "error";
  }
}

}  // namespace files
