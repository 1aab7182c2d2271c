// What vmm-vnc sends vmm for each key a VNC client types: one record per
// SOCK_SEQPACKET message (docs/framebuffer.md, "Live view (VNC)"). Both
// ends are built from this tree, so the layout is the host's.
#pragma once

#include <cstdint>

namespace vmm::vnc {

struct KeyRecord {
  uint32_t keysym;  // an X11 keysym, as RFB's KeyEvent carries it
  uint32_t down;    // 1 pressed, 0 released
};
static_assert(sizeof(KeyRecord) == 8);

// `down` of the one record vmm-vnc sends before any key: it serves.
inline constexpr uint32_t kKeyRecordReady = 2;

}  // namespace vmm::vnc
