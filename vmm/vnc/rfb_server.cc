#include "vmm/vnc/rfb_server.h"

#include <poll.h>
#include <rfb/rfb.h>
#include <spdlog/spdlog.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>

namespace vmm::vnc {
namespace {

// libvncserver logs through two global function pointers; its lines go to
// vmm's log at debug level (a connecting client is worth one info line,
// which VncServer writes itself).
void RfbLogToSpdlog(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  spdlog::debug("vnc: libvncserver: {}", text);
}

std::once_flag g_rfb_log_once;

rfbScreenInfoPtr Screen(void* screen) { return static_cast<rfbScreenInfoPtr>(screen); }

const char* ClientName(rfbClientPtr client) {
  return client->host != nullptr && client->host[0] != '\0' ? client->host : "local";
}

}  // namespace

// libvncserver's callbacks, which reach the server through screenData.
struct RfbCallbacks {
  static void OnKey(rfbBool down, rfbKeySym keysym, rfbClientPtr client) {
    auto* server = static_cast<RfbServer*>(client->screen->screenData);
    ++server->stats_.keys;
    server->on_key_(static_cast<uint32_t>(keysym), down != 0);
  }
  // The machine has no pointing device: pointer events are dropped (and
  // libvncserver's default, which moves a cursor it would draw into the
  // screen, never runs).
  static void OnPointer(int, int, int, rfbClientPtr) {}
  static void OnCutText(char*, int, rfbClientPtr) {}
  static rfbNewClientAction OnNewClient(rfbClientPtr client) {
    client->clientGoneHook = OnGone;
    return RFB_CLIENT_ACCEPT;
  }
  static void OnGone(rfbClientPtr client) {
    spdlog::info("vnc: a client left ({})", ClientName(client));
  }
};

base::Result<std::unique_ptr<RfbServer>> RfbServer::Create(
    base::UniqueFd listen_fd, const uint8_t* pixels, Geometry geometry,
    std::function<void(uint32_t keysym, bool down)> on_key) {
  std::call_once(g_rfb_log_once, [] {
    rfbLog = RfbLogToSpdlog;
    rfbErr = RfbLogToSpdlog;
    // A client that stops in the middle of a message holds the server for
    // at most this long (libvncserver's default is 20 s).
    rfbMaxClientWait = 2000;
  });
  if (geometry.width == 0 || geometry.height == 0 || geometry.pitch < geometry.width * 4) {
    return base::MakeError(base::ErrorKind::kUsage, "vnc: bad geometry {}x{} pitch {}",
                           geometry.width, geometry.height, geometry.pitch);
  }
  std::unique_ptr<RfbServer> server(new RfbServer());
  server->listen_fd_ = std::move(listen_fd);
  server->pixels_ = pixels;
  server->geometry_ = geometry;
  server->on_key_ = std::move(on_key);

  int argc = 1;
  char name[] = "vmm";
  char* argv[] = {name, nullptr};
  rfbScreenInfoPtr screen = rfbGetScreen(&argc, argv, static_cast<int>(geometry.width),
                                         static_cast<int>(geometry.height), 8, 3, 4);
  if (screen == nullptr) {
    return base::MakeError(base::ErrorKind::kInternal, "vnc: rfbGetScreen failed");
  }
  server->screen_ = screen;
  // XRGB in little-endian 32-bit words (docs/framebuffer.md, "Format").
  screen->serverFormat.bitsPerPixel = 32;
  screen->serverFormat.depth = 24;  // 24 significant bits; rfbGetScreen says 32
  screen->depth = 24;
  screen->serverFormat.trueColour = 1;
  screen->serverFormat.redShift = 16;
  screen->serverFormat.greenShift = 8;
  screen->serverFormat.blueShift = 0;
  screen->serverFormat.redMax = screen->serverFormat.greenMax = screen->serverFormat.blueMax = 255;
  screen->paddedWidthInBytes = static_cast<int>(geometry.pitch);
  // Never written through (the mapping is read-only): no cursor is drawn.
  screen->frameBuffer = const_cast<char*>(reinterpret_cast<const char*>(pixels));
  screen->desktopName = "vmm";
  screen->alwaysShared = TRUE;
  screen->autoPort = FALSE;
  screen->port = 0;
  screen->ipv6port = 0;
  screen->httpDir = nullptr;
  screen->httpPort = 0;
  screen->http6Port = 0;
  screen->screenData = server.get();
  screen->kbdAddEvent = RfbCallbacks::OnKey;
  screen->ptrAddEvent = RfbCallbacks::OnPointer;
  screen->setXCutText = RfbCallbacks::OnCutText;
  screen->newClientHook = RfbCallbacks::OnNewClient;
  server->default_cursor_ = screen->cursor;
  screen->cursor = nullptr;
  rfbInitServer(screen);
  if (screen->listenSock != RFB_INVALID_SOCKET || screen->listen6Sock != RFB_INVALID_SOCKET) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "vnc: libvncserver opened a listening socket of its own");
  }
  server->shadow_.assign(pixels, pixels + size_t{geometry.pitch} * geometry.height);
  return server;
}

RfbServer::~RfbServer() {
  if (screen_ == nullptr) return;
  rfbScreenInfoPtr screen = Screen(screen_);
  rfbShutdownServer(screen, TRUE);
  screen->cursor = static_cast<rfbCursorPtr>(default_cursor_);
  rfbScreenCleanup(screen);
}

int RfbServer::CountClients() const {
  int count = 0;
  rfbClientIteratorPtr it = rfbGetClientIterator(Screen(screen_));
  while (rfbClientPtr client = rfbClientIteratorNext(it)) {
    if (client->sock != RFB_INVALID_SOCKET) ++count;
  }
  rfbReleaseClientIterator(it);
  return count;
}

void RfbServer::Run(int watch_fd) {
  rfbScreenInfoPtr screen = Screen(screen_);
  for (;;) {
    const int clients = CountClients();
    // With clients, libvncserver's select() below is the wait; without,
    // poll sleeps until someone connects or the watched descriptor fires.
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {watch_fd, POLLIN, 0}};
    if (::poll(fds, 2, clients == 0 ? -1 : 0) < 0 && errno != EINTR) {
      spdlog::warn("vnc: poll: {}; the live view stops", std::strerror(errno));
      break;
    }
    if (fds[1].revents != 0) break;
    if (fds[0].revents != 0) AcceptPending(clients);
    if (CountClients() == 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_scan_ >= kScanInterval) {
      last_scan_ = now;
      ScanForChanges();
    }
    rfbProcessEvents(screen, std::chrono::microseconds(kScanInterval).count());
  }
  rfbShutdownServer(screen, TRUE);
}

void RfbServer::AcceptPending(int clients) {
  for (;;) {
    const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        spdlog::debug("vnc: accept: {}", std::strerror(errno));
      }
      return;
    }
    // libvncserver waits on its clients with select(): a descriptor past
    // FD_SETSIZE could not be served.
    if (clients >= kMaxClients || fd >= FD_SETSIZE) {
      ++stats_.refused;
      spdlog::warn("vnc: refused a client: {} are connected (at most {})", clients, kMaxClients);
      ::close(fd);
      continue;
    }
    rfbClientPtr client = rfbNewClient(Screen(screen_), fd);
    if (client == nullptr) {
      spdlog::debug("vnc: a client left during the handshake");
      continue;
    }
    ++clients;
    ++stats_.accepted;
    spdlog::info("vnc: a client connected ({}; {} now)", ClientName(client), clients);
  }
}

void RfbServer::ScanForChanges() {
  ++stats_.scans;
  const size_t row_bytes = size_t{geometry_.width} * 4;
  bool changed = false;
  uint32_t y = 0;
  while (y < geometry_.height) {
    const size_t offset = size_t{y} * geometry_.pitch;
    if (std::memcmp(pixels_ + offset, shadow_.data() + offset, row_bytes) == 0) {
      ++y;
      continue;
    }
    // A run of changed rows becomes one rectangle.
    const uint32_t first = y;
    while (y < geometry_.height) {
      const size_t at = size_t{y} * geometry_.pitch;
      if (std::memcmp(pixels_ + at, shadow_.data() + at, row_bytes) == 0) break;
      std::memcpy(shadow_.data() + at, pixels_ + at, row_bytes);
      ++y;
    }
    rfbMarkRectAsModified(Screen(screen_), 0, static_cast<int>(first),
                          static_cast<int>(geometry_.width), static_cast<int>(y));
    changed = true;
  }
  if (changed) ++stats_.changed_scans;
}

}  // namespace vmm::vnc
