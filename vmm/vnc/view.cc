#include "vmm/vnc/view.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <rfb/keysym.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/unix_socket.h"

extern char** environ;

namespace vmm {
namespace {

using base::ErrorKind;
using base::MakeError;

// --- The keymap: X11 keysym -> PS/2 key, US layout -------------------------

struct KeyEntry {
  uint32_t keysym;
  devices::Ps2Key key;
};

// Make codes in set 1 and set 2 (the IBM PC/AT and PS/2 tables). Shifted
// symbols are typed with the key of their unshifted one: a VNC client sends
// Shift's own KeyEvent first.
constexpr KeyEntry kKeymap[] = {
    {XK_a, {0x1e, 0x1c}},
    {XK_b, {0x30, 0x32}},
    {XK_c, {0x2e, 0x21}},
    {XK_d, {0x20, 0x23}},
    {XK_e, {0x12, 0x24}},
    {XK_f, {0x21, 0x2b}},
    {XK_g, {0x22, 0x34}},
    {XK_h, {0x23, 0x33}},
    {XK_i, {0x17, 0x43}},
    {XK_j, {0x24, 0x3b}},
    {XK_k, {0x25, 0x42}},
    {XK_l, {0x26, 0x4b}},
    {XK_m, {0x32, 0x3a}},
    {XK_n, {0x31, 0x31}},
    {XK_o, {0x18, 0x44}},
    {XK_p, {0x19, 0x4d}},
    {XK_q, {0x10, 0x15}},
    {XK_r, {0x13, 0x2d}},
    {XK_s, {0x1f, 0x1b}},
    {XK_t, {0x14, 0x2c}},
    {XK_u, {0x16, 0x3c}},
    {XK_v, {0x2f, 0x2a}},
    {XK_w, {0x11, 0x1d}},
    {XK_x, {0x2d, 0x22}},
    {XK_y, {0x15, 0x35}},
    {XK_z, {0x2c, 0x1a}},
    {XK_1, {0x02, 0x16}},
    {XK_2, {0x03, 0x1e}},
    {XK_3, {0x04, 0x26}},
    {XK_4, {0x05, 0x25}},
    {XK_5, {0x06, 0x2e}},
    {XK_6, {0x07, 0x36}},
    {XK_7, {0x08, 0x3d}},
    {XK_8, {0x09, 0x3e}},
    {XK_9, {0x0a, 0x46}},
    {XK_0, {0x0b, 0x45}},
    {XK_exclam, {0x02, 0x16}},
    {XK_at, {0x03, 0x1e}},
    {XK_numbersign, {0x04, 0x26}},
    {XK_dollar, {0x05, 0x25}},
    {XK_percent, {0x06, 0x2e}},
    {XK_asciicircum, {0x07, 0x36}},
    {XK_ampersand, {0x08, 0x3d}},
    {XK_asterisk, {0x09, 0x3e}},
    {XK_parenleft, {0x0a, 0x46}},
    {XK_parenright, {0x0b, 0x45}},
    {XK_minus, {0x0c, 0x4e}},
    {XK_underscore, {0x0c, 0x4e}},
    {XK_equal, {0x0d, 0x55}},
    {XK_plus, {0x0d, 0x55}},
    {XK_bracketleft, {0x1a, 0x54}},
    {XK_braceleft, {0x1a, 0x54}},
    {XK_bracketright, {0x1b, 0x5b}},
    {XK_braceright, {0x1b, 0x5b}},
    {XK_backslash, {0x2b, 0x5d}},
    {XK_bar, {0x2b, 0x5d}},
    {XK_semicolon, {0x27, 0x4c}},
    {XK_colon, {0x27, 0x4c}},
    {XK_apostrophe, {0x28, 0x52}},
    {XK_quotedbl, {0x28, 0x52}},
    {XK_grave, {0x29, 0x0e}},
    {XK_asciitilde, {0x29, 0x0e}},
    {XK_comma, {0x33, 0x41}},
    {XK_less, {0x33, 0x41}},
    {XK_period, {0x34, 0x49}},
    {XK_greater, {0x34, 0x49}},
    {XK_slash, {0x35, 0x4a}},
    {XK_question, {0x35, 0x4a}},
    {XK_space, {0x39, 0x29}},
    {XK_Escape, {0x01, 0x76}},
    {XK_BackSpace, {0x0e, 0x66}},
    {XK_Tab, {0x0f, 0x0d}},
    {XK_ISO_Left_Tab, {0x0f, 0x0d}},
    {XK_Return, {0x1c, 0x5a}},
    {XK_Control_L, {0x1d, 0x14}},
    {XK_Shift_L, {0x2a, 0x12}},
    {XK_Shift_R, {0x36, 0x59}},
    {XK_Alt_L, {0x38, 0x11}},
    {XK_Meta_L, {0x38, 0x11}},
    {XK_Caps_Lock, {0x3a, 0x58}},
    {XK_Num_Lock, {0x45, 0x77}},
    {XK_Scroll_Lock, {0x46, 0x7e}},
    {XK_F1, {0x3b, 0x05}},
    {XK_F2, {0x3c, 0x06}},
    {XK_F3, {0x3d, 0x04}},
    {XK_F4, {0x3e, 0x0c}},
    {XK_F5, {0x3f, 0x03}},
    {XK_F6, {0x40, 0x0b}},
    {XK_F7, {0x41, 0x83}},
    {XK_F8, {0x42, 0x0a}},
    {XK_F9, {0x43, 0x01}},
    {XK_F10, {0x44, 0x09}},
    {XK_F11, {0x57, 0x78}},
    {XK_F12, {0x58, 0x07}},
    // Extended keys: 0xe0 before the code in both sets.
    {XK_Control_R, {0x1d, 0x14, true}},
    {XK_Alt_R, {0x38, 0x11, true}},
    {XK_Meta_R, {0x38, 0x11, true}},
    {XK_ISO_Level3_Shift, {0x38, 0x11, true}},
    {XK_Super_L, {0x5b, 0x1f, true}},
    {XK_Super_R, {0x5c, 0x27, true}},
    {XK_Menu, {0x5d, 0x2f, true}},
    {XK_Insert, {0x52, 0x70, true}},
    {XK_Delete, {0x53, 0x71, true}},
    {XK_Home, {0x47, 0x6c, true}},
    {XK_End, {0x4f, 0x69, true}},
    {XK_Page_Up, {0x49, 0x7d, true}},
    {XK_Page_Down, {0x51, 0x7a, true}},
    {XK_Up, {0x48, 0x75, true}},
    {XK_Down, {0x50, 0x72, true}},
    {XK_Left, {0x4b, 0x6b, true}},
    {XK_Right, {0x4d, 0x74, true}},
    {XK_KP_Enter, {0x1c, 0x5a, true}},
};

base::Result<uint16_t> ParseDisplay(std::string_view digits, std::string_view text,
                                    std::string_view what) {
  uint32_t display = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), display);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      display > kVncMaxDisplay) {
    return MakeError(ErrorKind::kUsage,
                     "{}: '{}' has no display number 0..{} after ':' (:N listens on port 5900+N)",
                     what, text, kVncMaxDisplay);
  }
  return static_cast<uint16_t>(kVncBasePort + display);
}

}  // namespace

base::Result<VncSpec> ParseVncSpec(std::string_view text, std::string_view what) {
  VncSpec spec;
  if (text == "off") return spec;
  if (text.starts_with("unix:")) {
    spec.kind = VncSpec::Kind::kUnix;
    spec.path = std::string(text.substr(5));
    if (spec.path.empty()) {
      return MakeError(ErrorKind::kUsage, "{}: 'unix:' needs a socket path (unix:PATH)", what);
    }
    if (spec.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return MakeError(ErrorKind::kUsage,
                       "{}: the socket path '{}' is {} bytes; a Unix socket path has at most {}",
                       what, spec.path, spec.path.size(), sizeof(sockaddr_un{}.sun_path) - 1);
    }
    return spec;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return MakeError(ErrorKind::kUsage,
                     "{}: '{}' is not a VNC address (:N, HOST:N, unix:PATH or off)", what, text);
  }
  spec.kind = VncSpec::Kind::kTcp;
  spec.port = TRY(ParseDisplay(text.substr(colon + 1), text, what));
  if (colon > 0) {
    spec.host = std::string(text.substr(0, colon));
    in_addr address{};
    if (inet_pton(AF_INET, spec.host.c_str(), &address) != 1) {
      return MakeError(ErrorKind::kUsage,
                       "{}: '{}' is not an IPv4 address (HOST in HOST:N is numeric, e.g. "
                       "127.0.0.1 or 0.0.0.0)",
                       what, spec.host);
    }
  }
  return spec;
}

std::string VncSpecText(const VncSpec& spec) {
  switch (spec.kind) {
    case VncSpec::Kind::kOff:
      return "off";
    case VncSpec::Kind::kUnix:
      return "unix:" + spec.path;
    case VncSpec::Kind::kTcp:
      return fmt::format("{}:{}", spec.host, spec.port - kVncBasePort);
  }
  return "?";
}

std::optional<devices::Ps2Key> Ps2KeyForKeysym(uint32_t keysym) {
  // Capitals are the letter's key (Shift comes as its own event).
  if (keysym >= XK_A && keysym <= XK_Z) keysym = keysym - XK_A + XK_a;
  for (const KeyEntry& entry : kKeymap) {
    if (entry.keysym == keysym) return entry.key;
  }
  return std::nullopt;
}

std::string VncView::DefaultHelperPath() {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "vmm-vnc";
  return (self.parent_path() / "vmm-vnc").string();
}

namespace {

// A descriptor at or above 100, close-on-exec: posix_spawn's dup2 to 3, 4
// and 5 then never has equal source and target (which would keep
// close-on-exec set on some libc versions).
base::Result<base::UniqueFd> HighDuplicate(int fd, std::string_view what) {
  base::UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 100));
  if (!copy.valid()) {
    return base::MakeErrnoError(ErrorKind::kInternal, "vnc: duplicating {}", what);
  }
  return copy;
}

std::string StatusText(int status) {
  if (WIFEXITED(status)) return fmt::format("status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
  return fmt::format("wait status {}", status);
}

}  // namespace

base::Result<std::unique_ptr<VncView>> VncView::Create(
    const VncSpec& spec, const FramebufferMemory& framebuffer, asio::io_context& io,
    const Options& options, std::function<void(uint32_t keysym, bool down)> on_key) {
  std::unique_ptr<VncView> view(new VncView(io));
  view->on_key_ = std::move(on_key);

  base::UniqueFd tcp_listener;
  int listen_fd = -1;
  if (spec.kind == VncSpec::Kind::kTcp) {
    tcp_listener = base::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!tcp_listener.valid()) return base::MakeErrnoError(ErrorKind::kInternal, "vnc: socket");
    const int one = 1;
    ::setsockopt(tcp_listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(spec.port);
    inet_pton(AF_INET, spec.host.c_str(), &address.sin_addr);
    if (::bind(tcp_listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) !=
            0 ||
        ::listen(tcp_listener.get(), 8) != 0) {
      return MakeError(ErrorKind::kUsage, "--vnc {}: cannot listen on {}:{}: {}", VncSpecText(spec),
                       spec.host, spec.port, std::strerror(errno));
    }
    socklen_t size = sizeof(address);
    ::getsockname(tcp_listener.get(), reinterpret_cast<sockaddr*>(&address), &size);
    view->port_ = ntohs(address.sin_port);
    view->address_ = fmt::format("{}:{}", spec.host, view->port_);
    listen_fd = tcp_listener.get();
  } else if (spec.kind == VncSpec::Kind::kUnix) {
    view->unix_io_ = std::make_unique<asio::io_context>();
    auto listener = base::UnixListener::Create(*view->unix_io_, spec.path);
    if (!listener) {
      return MakeError(listener.error().kind(), "--vnc: {}", listener.error().message());
    }
    view->unix_listener_ = std::move(*listener);
    view->address_ = "unix:" + spec.path;
    listen_fd = view->unix_listener_->acceptor().native_handle();
  } else {
    return MakeError(ErrorKind::kInternal, "vnc: VncView::Create with --vnc off");
  }

  if (::access(options.helper.c_str(), X_OK) != 0) {
    return MakeError(ErrorKind::kUnavailable,
                     "--vnc: the live view's program {} cannot be run ({}); it is built and "
                     "installed beside vmm",
                     options.helper, std::strerror(errno));
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return base::MakeErrnoError(ErrorKind::kInternal, "vnc: socketpair");
  }
  base::UniqueFd ours(pair[0]);
  base::UniqueFd theirs(pair[1]);
  base::UniqueFd fb_copy = TRY(HighDuplicate(framebuffer.fd(), "the framebuffer memfd"));
  base::UniqueFd listen_copy = TRY(HighDuplicate(listen_fd, "the listening socket"));
  base::UniqueFd keys_copy = TRY(HighDuplicate(theirs.get(), "the key socket"));

  const firmware::Framebuffer& geometry = framebuffer.geometry();
  std::vector<std::string> args = {options.helper,
                                   "--framebuffer-fd",
                                   "3",
                                   "--width",
                                   std::to_string(geometry.width),
                                   "--height",
                                   std::to_string(geometry.height),
                                   "--pitch",
                                   std::to_string(geometry.pitch),
                                   "--listen-fd",
                                   "4",
                                   "--keys-fd",
                                   "5",
                                   "--seccomp",
                                   std::string(base::sandbox::SeccompModeName(options.seccomp)),
                                   "--log-level",
                                   options.log_level};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fb_copy.get(), 3);
  posix_spawn_file_actions_adddup2(&actions, listen_copy.get(), 4);
  posix_spawn_file_actions_adddup2(&actions, keys_copy.get(), 5);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Its own process group: a Ctrl-C on vmm's terminal is vmm's to handle,
  // and vmm ends it by closing the key socket.
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int spawned =
      posix_spawn(&pid, options.helper.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return MakeError(ErrorKind::kUnavailable, "--vnc: starting {}: {}", options.helper,
                     std::strerror(spawned));
  }
  view->pid_ = pid;
  theirs.Reset();
  keys_copy.Reset();

  // vmm-vnc says it is ready (a record with down == kReady) once it serves;
  // a program that ends first is an error now, not a silent missing view.
  pollfd ready{ours.get(), POLLIN, 0};
  vnc::KeyRecord record{};
  const int polled = ::poll(&ready, 1, static_cast<int>(kStartWait.count()));
  const ssize_t got = polled > 0 ? ::recv(ours.get(), &record, sizeof(record), 0) : -1;
  if (got != static_cast<ssize_t>(sizeof(record)) || record.down != vnc::kKeyRecordReady) {
    int status = 0;
    std::string how = "did not start in time";
    if (polled > 0 && ::waitpid(pid, &status, 0) == pid) {
      how = "ended at start with " + StatusText(status);
      view->pid_ = -1;
    }
    return MakeError(ErrorKind::kInternal, "--vnc: {} {} (its messages are above)", options.helper,
                     how);
  }
  view->keys_socket_.assign(ours.Release());
  view->ReadKeys();
  return view;
}

VncView::~VncView() {
  asio::error_code ignored;
  keys_socket_.close(ignored);
  if (pid_ <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + kReapWait;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        spdlog::warn("vnc: the live view's process ended with {}", StatusText(status));
      }
      return;
    }
    if (done < 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Still serving a client that does not read: it ends with vmm
  // (PR_SET_PDEATHSIG in vmm-vnc).
  spdlog::debug("vnc: the live view's process {} has not ended yet", pid_);
}

void VncView::ReadKeys() {
  keys_socket_.async_read_some(
      asio::buffer(buffer_), [this](const asio::error_code& error, size_t bytes) {
        if (error || bytes == 0) {
          if (error != asio::error::operation_aborted) {
            gone_ = true;
            spdlog::warn("vnc: the live view's process ended; the guest runs on without it");
          }
          return;
        }
        for (size_t i = 0; i < bytes / sizeof(vnc::KeyRecord); ++i) {
          keys_.fetch_add(1, std::memory_order_relaxed);
          on_key_(buffer_[i].keysym, buffer_[i].down != 0);
        }
        ReadKeys();
      });
}

}  // namespace vmm
