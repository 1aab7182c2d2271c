// virtio integration tests: the real vmm binary with a tiny test guest
// (tests/kvm/guest/virtio_guest.c) that drives virtio-mmio devices itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvm/kvm_test_util.h"
#include "tests/kvm/subprocess.h"

namespace {

using vmm_test::Has;
using vmm_test::ProcessResult;
using vmm_test::RunProcess;
using vmm_test::TempDir;
using vmm_test::Vmm;
namespace fs = std::filesystem;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

size_t CountLines(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// The guest brings up the virtio-console (device 0), sends two buffers on
// the transmit queue and exits 42 once both are in the used ring; the bytes
// must be in the file backend by then.
TEST(VirtioConsole, GuestTransmitReachesTheFileBackend) {
  REQUIRE_KVM();
  fs::path dir = TempDir("vmm_virtio_test");
  fs::path out = dir / "hvc0.log";
  auto r =
      Vmm({"--kernel", VIRTIO_GUEST, "--cmdline", "console", "--console", "file:" + out.string(),
           "--serial", "none", "--timeout", "30", "--log-level", "info"});
  EXPECT_EQ(r.status, 42) << r.err;
  EXPECT_EQ(ReadText(out), "hello from virtio-console\nsecond buffer: 0123456789\n");
  // The exit summary counts the device's work.
  EXPECT_TRUE(Has(r.err, "virtio 0 console (irq 5): notifications ")) << r.err;
  EXPECT_TRUE(Has(r.err, "bytes_written 52 ")) << r.err;
  fs::remove_all(dir);
}

// Host input reaches the guest: a client of the --console socket backend
// types a line; the guest receives it on the receive queue and sends it
// back on the transmit queue, which reaches the client.
TEST(VirtioConsole, SocketInputReachesTheGuestAndComesBack) {
  REQUIRE_KVM();
  fs::path dir = TempDir("vmm_virtio_test");
  const std::string sock = (dir / "hvc0.sock").string();
  std::vector<std::string> args = {
      "--kernel",       VIRTIO_GUEST, "--cmdline", "echo",      "--console",
      "socket:" + sock, "--serial",   "none",      "--timeout", "60"};
  const pid_t pid = vmm_test::SpawnVmm(args, dir / "stderr");
  ASSERT_GT(pid, 0);

  int fd = -1;
  for (int attempt = 0; attempt < 300 && fd < 0; ++attempt) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      fd = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ASSERT_GE(fd, 0) << "no console socket";
  const std::string line = "ping 12345\n";
  ASSERT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  std::string received;
  char buffer[256];
  for (ssize_t got; (got = read(fd, buffer, sizeof(buffer))) > 0;) {
    received.append(buffer, static_cast<size_t>(got));
    if (Has(received, "echo: " + line)) break;
  }
  close(fd);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 43) << ReadText(dir / "stderr");
  EXPECT_EQ(received, "echo: " + line);
  fs::remove_all(dir);
}

TEST(VirtioConsole, IsAnnouncedAfterDisksAndRng) {
  REQUIRE_KVM();
  fs::path dir = TempDir("vmm_virtio_test");
  {
    std::ofstream image(dir / "disk.img", std::ios::binary);
    image.seekp(4096);
    image.put(0);
  }
  auto r =
      Vmm({"--kernel", GUEST_KERNEL, "--cmdline", "exit=0", "--disk", (dir / "disk.img").string(),
           "--rng", "--console", "file:" + (dir / "c.log").string(), "--timeout", "30"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(Has(r.out,
                  "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 "
                  "virtio_mmio.device=4K@0xd0002000:7"))
      << r.out;
  fs::remove_all(dir);
}

TEST(VirtioConsole, SerialAndConsoleCannotBothUseStdio) {
  auto r = Vmm({"--kernel", VIRTIO_GUEST, "--console", "stdio"});
  EXPECT_EQ(r.status, 64) << r.err;
  EXPECT_TRUE(Has(r.err, "--serial and --console both use stdio")) << r.err;
  auto bad = Vmm({"--kernel", VIRTIO_GUEST, "--console", "tcp:1"});
  EXPECT_EQ(bad.status, 64) << bad.err;
  EXPECT_TRUE(Has(bad.err, "--console")) << bad.err;
  auto help = Vmm({"--help"});
  EXPECT_TRUE(Has(help.out, "--console")) << help.out;
}

// A guest that scribbles on every register of a virtio-blk and a virtio-rng
// (garbage values, rings outside RAM and in the MMIO hole, QueueNum > max,
// notifies of missing queues, writes in the wrong state, garbage descriptor
// tables, reads of every offset of both 4 KiB windows) and then checks both
// devices still work after a reset. vmm must end with the guest's own code,
// and the warnings on stderr must be rate-limited.
TEST(VirtioHostile, ScribblingGuestEndsWithItsOwnExitCode) {
  REQUIRE_KVM();
  fs::path dir = TempDir("vmm_virtio_test");
  {
    std::ofstream image(dir / "disk.img", std::ios::binary);
    image.seekp(64 * 1024 - 1);
    image.put(0);
  }
  auto r =
      Vmm({"--kernel", VIRTIO_GUEST, "--cmdline", "hostile", "--disk", (dir / "disk.img").string(),
           "--rng", "--serial", "none", "--timeout", "60", "--log-level", "info"},
          90);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 33) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  EXPECT_TRUE(Has(r.err, "virtio-mmio-block: ")) << "no warnings for the block device";
  EXPECT_TRUE(Has(r.err, "virtio-mmio-rng: ")) << "no warnings for the rng device";

  // Rate limiting: thousands of guest errors, at most GuestLog::kBurst (10)
  // warnings per device per second of run time (+1 for a partial window).
  std::smatch match;
  const std::regex summary(
      R"(virtio 0 block \(irq 5\):.* rejected_chains (\d+) guest_errors (\d+) needs_reset false)");
  ASSERT_TRUE(std::regex_search(r.err, match, summary)) << r.err.substr(0, 2000);
  EXPECT_GT(std::stoul(match[1]), 0u) << "garbage descriptor tables were not rejected";
  const unsigned long errors = std::stoul(match[2]);
  EXPECT_GT(errors, 1000u);
  const size_t warnings = CountLines(r.err, "virtio-mmio-block: ");
  EXPECT_LE(warnings, static_cast<size_t>(10 * (r.seconds + 2))) << warnings << " warnings";
  EXPECT_LT(warnings, errors);
  fs::remove_all(dir);
}

// One HTTP/1.0 request on the control API socket; the whole response, or
// "" if the socket is not there (yet).
std::string Http(const std::string& socket_path, const std::string& request) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buffer[4096];
  for (ssize_t got; (got = read(fd, buffer, sizeof(buffer))) > 0;) {
    response.append(buffer, static_cast<size_t>(got));
  }
  close(fd);
  return response;
}

// GET /metrics lists every virtio device with its counters while the
// bundled kernel's drivers use them (the kernel waits at its shell).
TEST(VirtioMetrics, EveryDeviceHasItsCountersInGetMetrics) {
  REQUIRE_KVM();
  fs::path dir = TempDir("vmm_virtio_test");
  {
    std::ofstream image(dir / "disk.img", std::ios::binary);
    image.seekp(8 * 512 - 1);
    image.put(0);
  }
  const std::string api = (dir / "api.sock").string();
  std::vector<std::string> args = {"--kernel", GUEST_KERNEL, "--disk", (dir / "disk.img").string(),
                                   "--rng",    "--serial",   "none",   "--api-sock",
                                   api,        "--timeout",  "60"};
  const pid_t pid = vmm_test::SpawnVmm(args, dir / "stderr");
  ASSERT_GT(pid, 0);

  // Until the guest's driver has brought the rng up (status DRIVER_OK) or
  // 30 s pass.
  const std::string get = "GET /metrics HTTP/1.0\r\n\r\n";
  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = Http(api, get);
    if (Has(metrics, R"("type":"rng")") && Has(metrics, R"("status":15)")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string body = R"({"action":"Shutdown"})";
  Http(api, "PUT /actions HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                body);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadText(dir / "stderr");

  EXPECT_TRUE(Has(metrics, "200 OK")) << metrics;
  EXPECT_TRUE(Has(metrics, R"("virtio":[{)")) << metrics;
  EXPECT_TRUE(Has(metrics, R"("index":0)")) << metrics;
  EXPECT_TRUE(Has(metrics, R"("type":"block")")) << metrics;
  EXPECT_TRUE(Has(metrics, R"("mmio_base":"0xd0001000")")) << metrics;
  for (const char* field :
       {"\"notifications\":", "\"requests\":", "\"bytes_read\":", "\"bytes_written\":",
        "\"interrupts\":", "\"interrupts_suppressed\":", "\"rejected_chains\":",
        "\"guest_errors\":", "\"needs_reset\":false", "\"flushes\":", "\"in_flight\":"}) {
    EXPECT_TRUE(Has(metrics, field)) << field << "\n" << metrics;
  }
  EXPECT_TRUE(Has(metrics, R"("status":15)")) << "the guest driver did not bring a device up\n"
                                              << metrics;
  fs::remove_all(dir);
}

}  // namespace
