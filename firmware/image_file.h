// Reading kernel and initrd images from the host file system.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace firmware {

// The largest kernel image vmm reads: far
// above any real kernel (a distribution bzImage is ~15 MiB), far below what
// would exhaust host memory when a sparse or hostile file is given.
inline constexpr uint64_t kMaxKernelImageBytes = 512ull << 20;

// Reads the whole file at `path` with plain POSIX I/O. `what` names the role
// in messages ("kernel image", "initrd"). The size is checked against
// `max_bytes` before anything is read, so a 64 GiB sparse file costs nothing.
// Errors: kNoInput (66) when the file is missing, unreadable or not a regular
// file; kBadImage (65) when it is empty or larger than `max_bytes` (naming the
// file and both sizes).
[[nodiscard]] base::Result<std::vector<uint8_t>> ReadImageFile(const std::string& path,
                                                               const char* what,
                                                               uint64_t max_bytes);

}  // namespace firmware
