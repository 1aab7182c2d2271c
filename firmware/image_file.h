// Reading kernel and initrd images from the host file system.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace firmware {

// Reads the whole file at `path` with plain POSIX I/O. `what` names the role
// in messages ("kernel image", "initrd"). Errors: kNoInput (66) when the file
// is missing, unreadable or not a regular file; kBadImage (65) when it is
// empty.
[[nodiscard]] base::Result<std::vector<uint8_t>> ReadImageFile(const std::string& path,
                                                               const char* what);

}  // namespace firmware
