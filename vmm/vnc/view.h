// The live view, vmm's side (docs/framebuffer.md, "Live view (VNC)"): the
// --vnc address, the keymap from X11 keysyms to PS/2 keys, and VncView,
// which binds the address and starts the vmm-vnc process that serves it.
//
// The RFB server (libvncserver) does not run inside vmm: VncView hands
// vmm-vnc (vmm/vnc/main.cc) the framebuffer's memfd, the listening socket
// and one end of a SOCK_SEQPACKET pair, and reads the keys it sends back on
// the device event loop. vmm stays statically linked without libvncserver,
// and a VNC client talks only to a process that holds the pixels read-only
// and a key socket (docs/security.md, "The live view").
//
// Threads: Create() on the main thread while the VM is built, before any
// seccomp filter is loaded on it (it spawns a process); `on_key` runs on
// the device event loop; the destructor on the main thread after that loop
// has stopped.
#pragma once

#include <sys/types.h>

#include <array>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/sandbox/seccomp.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "devices/legacy/i8042.h"
#include "vmm/framebuffer.h"
#include "vmm/vnc/key_record.h"
#include "vmm/vnc/spec.h"

namespace vmm {

// The PS/2 key an X11 keysym (as an RFB KeyEvent carries it) is typed with
// on a US layout: letters of either case, digits and their shifted symbols,
// punctuation, the editing, cursor and function keys, the modifiers and the
// keypad Enter; nullopt for the others (the caller drops them).
std::optional<devices::Ps2Key> Ps2KeyForKeysym(uint32_t keysym);

class VncView {
 public:
  struct Options {
    std::string helper;  // the vmm-vnc program (DefaultHelperPath())
    base::sandbox::SeccompMode seccomp = base::sandbox::SeccompMode::kKill;
    std::string log_level = "info";
  };

  // Binds the address (kUsage naming it when that fails: in use, not an
  // address of this host; a Unix path as base/unix_socket.h refuses it),
  // starts vmm-vnc (kUnavailable naming the program when it is missing)
  // and reads its keys on `io`, calling `on_key(keysym, down)`.
  [[nodiscard]] static base::Result<std::unique_ptr<VncView>> Create(
      const VncSpec& spec, const FramebufferMemory& framebuffer, asio::io_context& io,
      const Options& options, std::function<void(uint32_t keysym, bool down)> on_key);
  // Closes the key socket, which ends vmm-vnc, and reaps it (waiting at most
  // kReapWait; it is killed with vmm otherwise).
  ~VncView();
  VncView(const VncView&) = delete;
  VncView& operator=(const VncView&) = delete;

  static constexpr std::chrono::milliseconds kReapWait{500};
  // How long Create() waits for vmm-vnc to say it serves.
  static constexpr std::chrono::milliseconds kStartWait{5000};

  // vmm-vnc next to the running vmm (the build folder and an install put
  // them side by side).
  static std::string DefaultHelperPath();

  // Where it listens: "127.0.0.1:5901" or "unix:PATH" (the real port when
  // the spec asked for port 0).
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  uint64_t keys() const { return keys_.load(std::memory_order_relaxed); }
  // True once vmm-vnc's end of the key socket closed (it ended).
  bool helper_gone() const { return gone_.load(); }

 private:
  explicit VncView(asio::io_context& io) : keys_socket_(io) {}
  void ReadKeys();

  std::string address_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::function<void(uint32_t, bool)> on_key_;
  asio::posix::stream_descriptor keys_socket_;
  std::array<vnc::KeyRecord, 16> buffer_{};
  std::atomic<uint64_t> keys_{0};
  std::atomic<bool> gone_{false};
  // kUnix: the listener (base/unix_socket.h) on a context of its own that
  // never runs; it removes the socket file when the view ends.
  std::unique_ptr<asio::io_context> unix_io_;
  std::unique_ptr<base::UnixListener> unix_listener_;
};

}  // namespace vmm
