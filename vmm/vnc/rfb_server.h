// The RFB server of the live view (docs/framebuffer.md, "Live view (VNC)"),
// run by the vmm-vnc program (vmm/vnc/main.cc), never inside vmm itself:
// libvncserver serves the screen, reading the guest's framebuffer through a
// read-only mapping, and every key a client types goes to `on_key`.
//
// The server accepts on a socket it is given (vmm binds it, so that the
// address, its errors and close-on-exec stay vmm's; libvncserver opens no
// socket of its own and serves no HTTP) and hands each connection to
// libvncserver, at most kMaxClients at once. The guest writes its
// framebuffer without exits, so changes are found by comparing it row by row
// with a shadow copy, at most kScanInterval apart and only while a client is
// connected; with no client the server sleeps in poll().
//
// Threads: one. Create() and Run() on the same thread; every libvncserver
// call and `on_key` run there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace vmm::vnc {

struct Geometry {
  uint32_t width = 0, height = 0, pitch = 0;  // 32-bit XRGB pixels
};

class RfbServer {
 public:
  // More clients than this at once are refused (closed at accept).
  static constexpr int kMaxClients = 4;
  static constexpr std::chrono::milliseconds kScanInterval{30};

  // `listen_fd` is a listening stream socket (TCP or Unix); `pixels` holds
  // pitch x height bytes and outlives the server. `on_key(keysym, down)` for
  // every RFB KeyEvent (an X11 keysym).
  [[nodiscard]] static base::Result<std::unique_ptr<RfbServer>> Create(
      base::UniqueFd listen_fd, const uint8_t* pixels, Geometry geometry,
      std::function<void(uint32_t keysym, bool down)> on_key);
  ~RfbServer();
  RfbServer(const RfbServer&) = delete;
  RfbServer& operator=(const RfbServer&) = delete;

  // Serves until `watch_fd` is readable or hung up (vmm's end of the key
  // socket closing, or a test's eventfd), then disconnects every client.
  void Run(int watch_fd);

  struct Stats {
    uint64_t accepted = 0;
    uint64_t refused = 0;  // over kMaxClients
    uint64_t keys = 0;
    uint64_t scans = 0;
    uint64_t changed_scans = 0;  // scans that found a changed row
  };
  Stats stats() const { return stats_; }

 private:
  RfbServer() = default;
  int CountClients() const;
  void AcceptPending(int clients);
  void ScanForChanges();

  base::UniqueFd listen_fd_;
  const uint8_t* pixels_ = nullptr;
  Geometry geometry_;
  std::function<void(uint32_t, bool)> on_key_;
  void* screen_ = nullptr;          // rfbScreenInfoPtr (kept out of this header)
  void* default_cursor_ = nullptr;  // put back before rfbScreenCleanup frees it
  std::vector<uint8_t> shadow_;
  std::chrono::steady_clock::time_point last_scan_{};
  Stats stats_;

  friend struct RfbCallbacks;
};

}  // namespace vmm::vnc
