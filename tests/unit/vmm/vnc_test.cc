// The live view (docs/framebuffer.md, "Live view (VNC)"): --vnc's values,
// the keymap, and VncView with the real vmm-vnc program (its seccomp filter
// in kill mode) against a small RFB 3.8 client written here: the handshake,
// a full frame whose pixels are the framebuffer's, an incremental update
// after the "guest" draws, keys coming back, the client limit, the Unix
// socket, and a program that is missing or dies.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rfb/keysym.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "firmware/boot.h"
#include "vmm/config.h"
#include "vmm/vnc/view.h"

namespace vmm {
namespace {

using namespace std::chrono_literals;

// --- --vnc values and the keymap ---------------------------------------------

TEST(VncSpec, Values) {
  auto display = ParseVncSpec(":1", "--vnc");
  ASSERT_TRUE(display) << display.error().message();
  EXPECT_EQ(display->kind, VncSpec::Kind::kTcp);
  EXPECT_EQ(display->host, "127.0.0.1");
  EXPECT_EQ(display->port, 5901);
  EXPECT_EQ(VncSpecText(*display), "127.0.0.1:1");
  auto any = ParseVncSpec("0.0.0.0:12", "--vnc");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "0.0.0.0");
  EXPECT_EQ(any->port, 5912);
  auto unix_socket = ParseVncSpec("unix:/run/vmm/screen.sock", "--vnc");
  ASSERT_TRUE(unix_socket);
  EXPECT_EQ(unix_socket->kind, VncSpec::Kind::kUnix);
  EXPECT_EQ(unix_socket->path, "/run/vmm/screen.sock");
  EXPECT_EQ(ParseVncSpec("off", "--vnc")->kind, VncSpec::Kind::kOff);
  for (const char* bad : {"", "1", ":", ":x", ":-1", ":65536", ":1x", "localhost:1", "::1:2",
                          "300.1.1.1:1", "unix:", "5900"}) {
    auto refused = ParseVncSpec(bad, "--vnc");
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().exit_status(), 64) << bad;
    EXPECT_NE(refused.error().message().find("--vnc"), std::string::npos) << bad;
  }
  const std::string long_path = "unix:/" + std::string(200, 'x');
  EXPECT_FALSE(ParseVncSpec(long_path, "--vnc"));
}

TEST(VncSpec, ConfigFileField) {
  auto config = ParseConfig(R"({"kernel": "k", "vnc": "unix:screen.sock"})", "/srv/vm", "vm.json");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->vnc.kind, VncSpec::Kind::kUnix);
  EXPECT_EQ(config->vnc.path, "/srv/vm/screen.sock");
  auto bad = ParseConfig(R"({"kernel": "k", "vnc": ":nope"})", "/srv/vm", "vm.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_status(), 78);
  EXPECT_NE(bad.error().message().find("vnc"), std::string::npos);
}

TEST(VncKeymap, KeysymsBecomePs2Keys) {
  auto a = Ps2KeyForKeysym(XK_a);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->set1, 0x1e);
  EXPECT_EQ(a->set2, 0x1c);
  EXPECT_FALSE(a->extended);
  auto capital = Ps2KeyForKeysym(XK_A);
  ASSERT_TRUE(capital);
  EXPECT_EQ(capital->set1, 0x1e);  // Shift comes as its own event
  auto bang = Ps2KeyForKeysym(XK_exclam);
  ASSERT_TRUE(bang);
  EXPECT_EQ(bang->set1, Ps2KeyForKeysym(XK_1)->set1);
  auto up = Ps2KeyForKeysym(XK_Up);
  ASSERT_TRUE(up);
  EXPECT_TRUE(up->extended);
  EXPECT_EQ(up->set1, 0x48);
  EXPECT_EQ(up->set2, 0x75);
  EXPECT_EQ(Ps2KeyForKeysym(XK_F7)->set2, 0x83);
  EXPECT_EQ(Ps2KeyForKeysym(XK_Return)->set1, 0x1c);
  EXPECT_TRUE(Ps2KeyForKeysym(XK_KP_Enter)->extended);
  EXPECT_FALSE(Ps2KeyForKeysym(0x1234567));
  EXPECT_FALSE(Ps2KeyForKeysym(XK_Pause));
  // Every key: a set 1 make code below 0x80 (its break code sets bit 7),
  // never a prefix byte, in both sets.
  for (uint32_t keysym = 0x20; keysym < 0x10000; ++keysym) {
    auto key = Ps2KeyForKeysym(keysym);
    if (!key) continue;
    EXPECT_LT(key->set1, 0x80) << std::hex << keysym;
    EXPECT_NE(key->set1, 0) << std::hex << keysym;
    EXPECT_NE(key->set2, 0xe0) << std::hex << keysym;
    EXPECT_NE(key->set2, 0xf0) << std::hex << keysym;
  }
}

// --- A small RFB 3.8 client ---------------------------------------------------

// Reads exactly `size` bytes or fails after 10 s.
bool ReadAll(int fd, void* out, size_t size) {
  auto* bytes = static_cast<uint8_t*>(out);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (size > 0) {
    pollfd waiting{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ::poll(&waiting, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    const ssize_t n = ::read(fd, bytes, size);
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void PutBe16(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void PutBe32(std::vector<uint8_t>& out, uint32_t v) {
  PutBe16(out, v >> 16);
  PutBe16(out, v & 0xffff);
}

struct ServerInit {
  uint16_t width = 0, height = 0;
  uint8_t bpp = 0, depth = 0, true_colour = 0;
  uint8_t red_shift = 0, green_shift = 0, blue_shift = 0;
  std::string name;
};

class RfbClient {
 public:
  static base::UniqueFd ConnectTcp(uint16_t port) {
    base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return base::UniqueFd();
    }
    return fd;
  }
  static base::UniqueFd ConnectUnix(const std::string& path) {
    base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return base::UniqueFd();
    }
    return fd;
  }

  explicit RfbClient(base::UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  // ProtocolVersion, security None, ClientInit (shared), ServerInit.
  bool Handshake(ServerInit& init) {
    char version[12];
    if (!ReadAll(fd(), version, sizeof(version))) return false;
    if (std::string(version, sizeof(version)) != "RFB 003.008\n") return false;
    if (!WriteAll(fd(), std::vector<uint8_t>(version, version + sizeof(version)))) return false;
    uint8_t count = 0;
    if (!ReadAll(fd(), &count, 1) || count == 0) return false;
    std::vector<uint8_t> types(count);
    if (!ReadAll(fd(), types.data(), count)) return false;
    bool has_none = false;
    for (uint8_t type : types) has_none |= type == 1;
    if (!has_none || !WriteAll(fd(), {1})) return false;
    uint8_t result[4];
    if (!ReadAll(fd(), result, 4) || Be32(result) != 0) return false;
    if (!WriteAll(fd(), {1})) return false;  // shared
    uint8_t head[24];
    if (!ReadAll(fd(), head, sizeof(head))) return false;
    init.width = Be16(head);
    init.height = Be16(head + 2);
    init.bpp = head[4];
    init.depth = head[5];
    init.true_colour = head[7];
    init.red_shift = head[14];
    init.green_shift = head[15];
    init.blue_shift = head[16];
    std::string name(Be32(head + 20), '\0');
    if (!ReadAll(fd(), name.data(), name.size())) return false;
    init.name = name;
    // SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, XRGB
    // (the server's own, said explicitly), then SetEncodings: Raw only.
    std::vector<uint8_t> format = {0, 0, 0, 0, 32, 24, 0, 1};
    PutBe16(format, 255);
    PutBe16(format, 255);
    PutBe16(format, 255);
    format.insert(format.end(), {16, 8, 0, 0, 0, 0});
    std::vector<uint8_t> encodings = {2, 0};
    PutBe16(encodings, 1);
    PutBe32(encodings, 0);
    return WriteAll(fd(), format) && WriteAll(fd(), encodings);
  }

  bool RequestUpdate(bool incremental, uint16_t width, uint16_t height) {
    std::vector<uint8_t> request = {3, static_cast<uint8_t>(incremental ? 1 : 0)};
    PutBe16(request, 0);
    PutBe16(request, 0);
    PutBe16(request, width);
    PutBe16(request, height);
    return WriteAll(fd(), request);
  }

  struct Rect {
    uint16_t x, y, width, height;
    std::vector<uint32_t> pixels;
  };
  // One FramebufferUpdate (Raw rectangles only).
  bool ReadUpdate(std::vector<Rect>& rects) {
    uint8_t head[4];
    if (!ReadAll(fd(), head, 4) || head[0] != 0) return false;
    const uint16_t count = Be16(head + 2);
    for (uint16_t i = 0; i < count; ++i) {
      uint8_t r[12];
      if (!ReadAll(fd(), r, sizeof(r)) || Be32(r + 8) != 0) return false;
      Rect rect{Be16(r), Be16(r + 2), Be16(r + 4), Be16(r + 6), {}};
      rect.pixels.resize(size_t{rect.width} * rect.height);
      if (!ReadAll(fd(), rect.pixels.data(), rect.pixels.size() * 4)) return false;
      rects.push_back(std::move(rect));
    }
    return true;
  }

  bool Key(uint32_t keysym, bool down) {
    std::vector<uint8_t> event = {4, static_cast<uint8_t>(down ? 1 : 0), 0, 0};
    PutBe32(event, keysym);
    return WriteAll(fd(), event);
  }

 private:
  base::UniqueFd fd_;
};

// --- VncView with vmm-vnc -----------------------------------------------------

std::string HelperProgram() {
  const char* program = std::getenv("VMM_VNC_PROGRAM");
  return program != nullptr ? program : VncView::DefaultHelperPath();
}

uint32_t PatternPixel(uint32_t x, uint32_t y) {
  return (x * 4) << 16 | (y * 5) << 8 | ((x ^ y) & 0xff);
}

class VncViewTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kWidth = 64, kHeight = 48;

  void SetUp() override {
    if (::access(HelperProgram().c_str(), X_OK) != 0) {
      GTEST_FAIL() << "vmm-vnc not found at " << HelperProgram() << " (set VMM_VNC_PROGRAM)";
    }
    auto memory = FramebufferMemory::Create(firmware::MakeFramebuffer(kWidth, kHeight));
    ASSERT_TRUE(memory) << memory.error().message();
    framebuffer_ = std::move(*memory);
    for (uint32_t y = 0; y < kHeight; ++y) {
      for (uint32_t x = 0; x < kWidth; ++x) Pixel(x, y) = PatternPixel(x, y);
    }
  }

  uint32_t& Pixel(uint32_t x, uint32_t y) {
    return reinterpret_cast<uint32_t*>(framebuffer_->host() +
                                       size_t{y} * framebuffer_->geometry().pitch)[x];
  }

  base::Result<std::unique_ptr<VncView>> StartView(const VncSpec& spec,
                                                   const std::string& program = HelperProgram()) {
    VncView::Options options;
    options.helper = program;
    options.seccomp = base::sandbox::SeccompMode::kKill;
    options.log_level = "warn";
    return VncView::Create(spec, *framebuffer_, io_, options, [this](uint32_t keysym, bool down) {
      keys_.emplace_back(keysym, down);
    });
  }

  // Runs the "device loop" until `count` keys arrived (or 10 s).
  void WaitForKeys(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (keys_.size() < count && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
    }
  }

  static VncSpec AnyTcpPort() {
    VncSpec spec;
    spec.kind = VncSpec::Kind::kTcp;
    spec.port = 0;
    return spec;
  }

  asio::io_context io_;
  std::unique_ptr<FramebufferMemory> framebuffer_;
  std::vector<std::pair<uint32_t, bool>> keys_;
};

TEST_F(VncViewTest, ClientSeesTheFramebufferAndItsKeysComeBack) {
  auto view = StartView(AnyTcpPort());
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_NE((*view)->port(), 0);
  EXPECT_EQ((*view)->address(), "127.0.0.1:" + std::to_string((*view)->port()));

  RfbClient client(RfbClient::ConnectTcp((*view)->port()));
  ASSERT_GE(client.fd(), 0);
  ServerInit init;
  ASSERT_TRUE(client.Handshake(init));
  EXPECT_EQ(init.width, kWidth);
  EXPECT_EQ(init.height, kHeight);
  EXPECT_EQ(init.bpp, 32);
  EXPECT_EQ(init.depth, 24);
  EXPECT_NE(init.true_colour, 0);
  EXPECT_EQ(init.red_shift, 16);
  EXPECT_EQ(init.green_shift, 8);
  EXPECT_EQ(init.blue_shift, 0);
  EXPECT_EQ(init.name, "vmm");

  // A full frame: every pixel is the framebuffer's.
  ASSERT_TRUE(client.RequestUpdate(false, kWidth, kHeight));
  std::vector<RfbClient::Rect> rects;
  ASSERT_TRUE(client.ReadUpdate(rects));
  std::vector<uint32_t> screen(size_t{kWidth} * kHeight, 0xdeadbeef);
  for (const auto& rect : rects) {
    for (uint32_t y = 0; y < rect.height; ++y) {
      for (uint32_t x = 0; x < rect.width; ++x) {
        screen[(rect.y + y) * kWidth + rect.x + x] = rect.pixels[y * rect.width + x] & 0xffffff;
      }
    }
  }
  for (uint32_t y = 0; y < kHeight; ++y) {
    for (uint32_t x = 0; x < kWidth; ++x) {
      ASSERT_EQ(screen[y * kWidth + x], PatternPixel(x, y)) << "pixel " << x << "," << y;
    }
  }

  // The "guest" draws a line (no exit, no call): the next incremental
  // update carries it.
  for (uint32_t x = 0; x < kWidth; ++x) Pixel(x, 20) = 0x00ff8000;
  ASSERT_TRUE(client.RequestUpdate(true, kWidth, kHeight));
  rects.clear();
  ASSERT_TRUE(client.ReadUpdate(rects));
  bool saw_line = false;
  for (const auto& rect : rects) {
    if (rect.y <= 20 && rect.y + rect.height > 20) {
      saw_line = true;
      for (uint32_t x = 0; x < rect.width; ++x) {
        EXPECT_EQ(rect.pixels[(20 - rect.y) * rect.width + x] & 0xffffff, 0xff8000u);
      }
    }
  }
  EXPECT_TRUE(saw_line);

  ASSERT_TRUE(client.Key(XK_a, true));
  ASSERT_TRUE(client.Key(XK_a, false));
  ASSERT_TRUE(client.Key(XK_Return, true));
  WaitForKeys(3);
  ASSERT_EQ(keys_.size(), 3u);
  EXPECT_EQ(keys_[0], std::make_pair(uint32_t{XK_a}, true));
  EXPECT_EQ(keys_[1], std::make_pair(uint32_t{XK_a}, false));
  EXPECT_EQ(keys_[2], std::make_pair(uint32_t{XK_Return}, true));
  EXPECT_EQ((*view)->keys(), 3u);

  // Closing the view ends vmm-vnc, cleanly (status 0: no seccomp kill).
  const pid_t pid = (*view)->pid();
  view->reset();
  EXPECT_EQ(::kill(pid, 0), -1) << "vmm-vnc " << pid << " still runs";
}

TEST_F(VncViewTest, UnixSocketServesAndIsRemovedAtTheEnd) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("vnc-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  VncSpec spec;
  spec.kind = VncSpec::Kind::kUnix;
  spec.path = (dir / "screen.sock").string();
  auto view = StartView(spec);
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_EQ((*view)->address(), "unix:" + spec.path);
  RfbClient client(RfbClient::ConnectUnix(spec.path));
  ASSERT_GE(client.fd(), 0);
  ServerInit init;
  ASSERT_TRUE(client.Handshake(init));
  EXPECT_EQ(init.width, kWidth);
  ASSERT_TRUE(client.Key(XK_Escape, true));
  WaitForKeys(1);
  ASSERT_EQ(keys_.size(), 1u);
  EXPECT_EQ(keys_[0].first, uint32_t{XK_Escape});
  view->reset();
  EXPECT_FALSE(std::filesystem::exists(spec.path));
  std::filesystem::remove_all(dir);
}

TEST_F(VncViewTest, AFifthClientIsRefused) {
  auto view = StartView(AnyTcpPort());
  ASSERT_TRUE(view) << view.error().message();
  std::vector<std::unique_ptr<RfbClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<RfbClient>(RfbClient::ConnectTcp((*view)->port())));
    ServerInit init;
    ASSERT_TRUE(clients.back()->Handshake(init)) << "client " << i;
  }
  RfbClient fifth(RfbClient::ConnectTcp((*view)->port()));
  ASSERT_GE(fifth.fd(), 0);
  char byte;
  EXPECT_FALSE(ReadAll(fifth.fd(), &byte, 1)) << "the fifth client was served";
  // One leaves; a new one is served again.
  clients.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    RfbClient again(RfbClient::ConnectTcp((*view)->port()));
    ServerInit init;
    served = again.Handshake(init);
    if (!served) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(VncViewTest, GarbageFromAClientDoesNotEndTheServer) {
  auto view = StartView(AnyTcpPort());
  ASSERT_TRUE(view) << view.error().message();
  {
    // Not RFB at all; then a valid version followed by a message type that
    // does not exist; then a huge ClientCutText length.
    RfbClient junk(RfbClient::ConnectTcp((*view)->port()));
    WriteAll(junk.fd(), std::vector<uint8_t>(64, 0x41));
  }
  {
    RfbClient bad(RfbClient::ConnectTcp((*view)->port()));
    ServerInit init;
    ASSERT_TRUE(bad.Handshake(init));
    WriteAll(bad.fd(), {0xee, 1, 2, 3});
  }
  {
    RfbClient cut(RfbClient::ConnectTcp((*view)->port()));
    ServerInit init;
    ASSERT_TRUE(cut.Handshake(init));
    WriteAll(cut.fd(), {6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff});
  }
  RfbClient good(RfbClient::ConnectTcp((*view)->port()));
  ServerInit init;
  ASSERT_TRUE(good.Handshake(init));
  ASSERT_TRUE(good.Key(XK_b, true));
  WaitForKeys(1);
  ASSERT_EQ(keys_.size(), 1u);
  EXPECT_FALSE((*view)->helper_gone());
}

TEST_F(VncViewTest, AddressInUseIsAUsageErrorNamingIt) {
  auto first = StartView(AnyTcpPort());
  ASSERT_TRUE(first) << first.error().message();
  VncSpec same = AnyTcpPort();
  same.port = (*first)->port();
  auto second = StartView(same);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().exit_status(), 64);
  EXPECT_NE(second.error().message().find(std::to_string(same.port)), std::string::npos)
      << second.error().message();
}

TEST_F(VncViewTest, MissingProgramIsUnavailable) {
  auto view = StartView(AnyTcpPort(), "/nonexistent/vmm-vnc");
  ASSERT_FALSE(view);
  EXPECT_EQ(view.error().exit_status(), 69);
  EXPECT_NE(view.error().message().find("/nonexistent/vmm-vnc"), std::string::npos);
}

TEST_F(VncViewTest, ForbiddenSystemCallEndsTheProgramWith83) {
  // The seccomp test hook (docs/security.md, "Testing the filters"): vmm-vnc
  // makes a call outside its filter right after loading it.
  ::setenv("VMM_TEST_SECCOMP_VIOLATE", "vnc", 1);
  auto view = StartView(AnyTcpPort());
  ::unsetenv("VMM_TEST_SECCOMP_VIOLATE");
  ASSERT_FALSE(view);
  EXPECT_NE(view.error().message().find("status 83"), std::string::npos) << view.error().message();
}

TEST_F(VncViewTest, ProgramThatDiesIsNoticed) {
  auto view = StartView(AnyTcpPort());
  ASSERT_TRUE(view) << view.error().message();
  ASSERT_EQ(::kill((*view)->pid(), SIGKILL), 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!(*view)->helper_gone() && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    io_.run_for(20ms);
  }
  EXPECT_TRUE((*view)->helper_gone());
}

}  // namespace
}  // namespace vmm
