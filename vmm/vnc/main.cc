// vmm-vnc: the live view's server process (docs/framebuffer.md, "Live view
// (VNC)"). vmm starts it for --vnc; it is not meant to be run by hand.
//
// It gets three descriptors from vmm: the framebuffer's memfd (mapped here
// read-only), the listening socket vmm bound, and one end of a SOCK_SEQPACKET
// pair on which it sends each key a client types as a KeyRecord
// (vmm/vnc/view.h). It loads its seccomp filter (kind "vnc") before it
// accepts anyone and ends when vmm's end of the pair closes. libvncserver and
// every byte a VNC client sends stay in this process: a client that found a
// bug in them would hold the pixels and the key socket, not /dev/kvm or
// guest memory.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/sandbox/seccomp.h"
#include "vmm/vnc/key_record.h"
#include "vmm/vnc/rfb_server.h"

namespace {

int Fail(const base::Error& error) {
  spdlog::error("{}", error.ToString());
  return error.exit_status();
}

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

}  // namespace

int main(int argc, char** argv) {
  // A client that vanishes must not end the process mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  // Ends with vmm, whatever way vmm ends (the key socket's hang-up is the
  // orderly way).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto logger = spdlog::stderr_color_mt("vmm-vnc");
  logger->set_pattern("vmm: %^%l%$: %v");
  spdlog::set_default_logger(logger);

  CLI::App app{"vmm-vnc: the live view's VNC server, started by vmm --vnc (docs/framebuffer.md)"};
  int framebuffer_fd = -1, listen_fd = -1, keys_fd = -1;
  vmm::vnc::Geometry geometry;
  std::string seccomp = "kill", log_level = "info";
  app.add_option("--framebuffer-fd", framebuffer_fd, "the framebuffer's memfd")->required();
  app.add_option("--width", geometry.width, "pixels")->required();
  app.add_option("--height", geometry.height, "pixels")->required();
  app.add_option("--pitch", geometry.pitch, "bytes per row")->required();
  app.add_option("--listen-fd", listen_fd, "the listening socket")->required();
  app.add_option("--keys-fd", keys_fd, "the SOCK_SEQPACKET socket keys go to")->required();
  app.add_option("--seccomp", seccomp, "kill, log or off");
  app.add_option("--log-level", log_level, "as vmm's");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  for (auto [fd, what] : {std::pair{framebuffer_fd, "--framebuffer-fd"},
                          std::pair{listen_fd, "--listen-fd"}, std::pair{keys_fd, "--keys-fd"}}) {
    if (!IsOpen(fd)) {
      return Fail(base::Error(base::ErrorKind::kUsage,
                              fmt::format("vnc: {} {} is not an open descriptor", what, fd)));
    }
  }
  auto mode = base::sandbox::ParseSeccompMode(seccomp, "--seccomp");
  if (!mode) return Fail(mode.error());
  if (geometry.width == 0 || geometry.height == 0 || geometry.width > 16384 ||
      geometry.height > 16384 || geometry.pitch < geometry.width * 4) {
    return Fail(base::Error(base::ErrorKind::kUsage,
                            fmt::format("vnc: bad geometry {}x{}, pitch {}", geometry.width,
                                        geometry.height, geometry.pitch)));
  }
  const size_t size = size_t{geometry.pitch} * geometry.height;
  void* pixels = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, framebuffer_fd, 0);
  if (pixels == MAP_FAILED) {
    return Fail(base::Error(
        base::ErrorKind::kInternal,
        fmt::format("vnc: mapping the framebuffer ({} bytes): {}", size, std::strerror(errno))));
  }
  ::close(framebuffer_fd);
  // vmm reads the keys on its event loop; when it falls behind, keys are
  // dropped rather than this process blocking.
  ::fcntl(keys_fd, F_SETFL, ::fcntl(keys_fd, F_GETFL) | O_NONBLOCK);
  ::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK);

  uint64_t dropped = 0;
  auto server = vmm::vnc::RfbServer::Create(
      base::UniqueFd(listen_fd), static_cast<const uint8_t*>(pixels), geometry,
      [keys_fd, &dropped](uint32_t keysym, bool down) {
        const vmm::vnc::KeyRecord record{keysym, down ? 1u : 0u};
        if (::send(keys_fd, &record, sizeof(record), MSG_DONTWAIT | MSG_NOSIGNAL) !=
            static_cast<ssize_t>(sizeof(record))) {
          if (dropped++ == 0) spdlog::warn("vnc: vmm is not taking keys; dropping them");
        }
      });
  if (!server) return Fail(server.error());

  if (auto configured = base::sandbox::ConfigureSeccomp(*mode); !configured) {
    return Fail(configured.error());
  }
  if (auto entered = base::sandbox::EnterThread(base::sandbox::ThreadKind::kVnc); !entered) {
    return Fail(entered.error());
  }
  const vmm::vnc::KeyRecord ready{0, vmm::vnc::kKeyRecordReady};
  if (::send(keys_fd, &ready, sizeof(ready), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(ready))) {
    return 0;  // vmm is gone already
  }
  (*server)->Run(keys_fd);
  const auto stats = (*server)->stats();
  spdlog::debug("vnc: {} clients served, {} refused, {} keys ({} dropped), {} scans",
                stats.accepted, stats.refused, stats.keys, dropped, stats.scans);
  server->reset();
  return 0;
}
