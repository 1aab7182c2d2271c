// The --vnc address (docs/framebuffer.md, "Live view (VNC)"), apart from
// vmm/vnc/view.h so that the configuration can hold one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace vmm {

struct VncSpec {
  enum class Kind { kOff, kTcp, kUnix };
  Kind kind = Kind::kOff;
  std::string host = "127.0.0.1";  // kTcp: an IPv4 address
  uint16_t port = 0;               // kTcp: 5900 + display (0: any free port, for tests)
  std::string path;                // kUnix
};
inline constexpr uint16_t kVncBasePort = 5900;
inline constexpr uint32_t kVncMaxDisplay = 65535 - kVncBasePort;

// "off", ":N" (127.0.0.1, port 5900+N), "HOST:N" (HOST an IPv4 address, e.g.
// 0.0.0.0 for every interface) or "unix:PATH"; kUsage naming `what` and the
// value otherwise.
[[nodiscard]] base::Result<VncSpec> ParseVncSpec(std::string_view text, std::string_view what);
std::string VncSpecText(const VncSpec& spec);

}  // namespace vmm
