// Where a character device (COM1, the virtio console) is connected: the
// backend syntax of --serial and --console (vmm/console/console.h describes
// each backend). Parsed once, at the command line or the config file; the
// rest of vmm only sees the typed SerialSpec.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace vmm {

struct SerialSpec {
  enum class Kind { kStdio, kFile, kSocket, kNone };
  Kind kind = Kind::kNone;
  std::string path;  // file: and socket: only

  bool operator==(const SerialSpec&) const = default;
};

// "stdio", "file:PATH", "socket:PATH", "none". Anything else, an empty PATH
// or a PATH holding a NUL is ErrorKind::kUsage: "FLAG TEXT: what is wrong".
[[nodiscard]] base::Result<SerialSpec> ParseSerialSpec(std::string_view text,
                                                       std::string_view flag = "--serial");

// The inverse of ParseSerialSpec.
std::string FormatSerialSpec(const SerialSpec& spec);

}  // namespace vmm
