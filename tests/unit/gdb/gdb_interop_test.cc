// The real gdb (Debian's, in batch mode) against GdbServer over the
// simulated target of fake_target.h: what a user types, end to end, without
// /dev/kvm. The same commands against a real guest are in tests/kvm (they
// need KVM).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include "tests/unit/gdb/fake_target.h"
#include "vmm/gdb/rsp.h"
#include "vmm/gdb/server.h"

namespace vmm::gdb {
namespace {

using testing::FakeTarget;

// Runs gdb with `commands` (one per line) after connecting to `address`;
// returns stdout and stderr together. Each line is its own -ex, so a
// command that fails (as `x` on unmapped memory must) does not end the run.
std::string RunGdb(const std::string& address, const std::string& commands) {
  std::string command = "timeout 60 gdb -nx -batch -ex 'set pagination off' -ex 'set confirm off'";
  command += " -ex 'set width 0' -ex 'target remote " + address + "'";
  size_t pos = 0;
  while (pos < commands.size()) {
    size_t end = commands.find('\n', pos);
    if (end == std::string::npos) end = commands.size();
    const std::string line = commands.substr(pos, end - pos);
    if (!line.empty()) command += " -ex '" + line + "'";
    pos = end + 1;
  }
  command += " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  char buf[4096];
  size_t n;
  while (pipe && (n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  if (pipe) pclose(pipe);
  return output;
}

bool HaveGdb() { return std::system("gdb --version >/dev/null 2>&1") == 0; }

class GdbInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // gdb is installed by `make test` (scripts/install-deps.sh); without it
    // these tests fail rather than pass unseen.
    ASSERT_TRUE(HaveGdb()) << "gdb is not installed (apt-get install gdb)";
    target_ = std::make_unique<FakeTarget>(2);
    GdbEndpoint endpoint;
    endpoint.port = 0;
    auto server = GdbServer::Start(endpoint, *target_);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_.reset();
    target_.reset();
  }

  std::unique_ptr<FakeTarget> target_;
  std::unique_ptr<GdbServer> server_;
};

TEST_F(GdbInteropTest, RegistersMemoryBreakpointsStepping) {
  const std::string out = RunGdb(server_->address(), R"(
info registers rip cr0 cr3 cr4 efer eflags
p/x $fs_base
set {long}0x3000 = 0x1122334455667788
x/2gx 0x3000
x/1gx 0x90000
break *0x1010
continue
p/x $pc
stepi
p/x $pc
delete
hbreak *0x1020
continue
p/x $pc
delete
watch *(long*)0x3000
continue
delete
info threads
thread 2
p/x $rax
monitor echo hello from the target
kill
)");
  SCOPED_TRACE(out);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(rip\s+0x1000)")));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(cr0\s+0x80000011\s+\[ PE ET PG \])")));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(cr3\s+0x9000)")));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(efer\s+0x500\s+\[ LME LMA \])")));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(0x3000:\s+0x1122334455667788)")));
  EXPECT_NE(out.find("Cannot access memory at address 0x90000"), std::string::npos);
  EXPECT_NE(out.find("hit Breakpoint 1, 0x0000000000001010"), std::string::npos);
  EXPECT_NE(out.find("$2 = 0x1010"), std::string::npos);
  EXPECT_NE(out.find("$3 = 0x1011"), std::string::npos);
  EXPECT_NE(out.find("hit Breakpoint 2, 0x0000000000001020"), std::string::npos);
  // Both simulated vCPUs run the store, so the old value is 0x1122334455667788
  // plus however many stores happened before the watchpoint went in.
  std::smatch watch;
  ASSERT_TRUE(std::regex_search(
      out, watch,
      std::regex(
          R"(hit Hardware watchpoint 3: \*\(long\*\)0x3000\s+Old value = (\d+)\s+New value = (\d+))")));
  EXPECT_GE(std::stoull(watch[1]), 0x1122334455667788u);
  EXPECT_EQ(std::stoull(watch[2]), std::stoull(watch[1]) + 1);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(1\s+Thread 1 \(vCPU 0\))")));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(2\s+Thread 2 \(vCPU 1\))")));
  EXPECT_NE(out.find("0x2222"), std::string::npos);  // vCPU 1's rax
  EXPECT_NE(out.find("hello from the target"), std::string::npos);
  EXPECT_TRUE(target_->killed());
  EXPECT_GT(target_->variable(), 0x1122334455667788u);
}

TEST_F(GdbInteropTest, FifthDebugRegisterIsRefusedVisibly) {
  const std::string out = RunGdb(server_->address(), R"(
hbreak *0x1001
hbreak *0x1002
hbreak *0x1003
hbreak *0x1004
hbreak *0x1005
continue
)");
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("Cannot insert hardware breakpoint 5."), std::string::npos);
  EXPECT_NE(out.find("Hardware assisted breakpoint 4 at 0x1004"), std::string::npos);
}

TEST_F(GdbInteropTest, DetachLeavesTheGuestRunning) {
  const std::string out = RunGdb(server_->address(), "break *0x1010\ndetach\n");
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("[Inferior 1 (Remote target) detached]"), std::string::npos);
  EXPECT_TRUE(target_->running());
  EXPECT_EQ(target_->breakpoints(), 0u);
}

// A raw client: bytes in, whatever the server answers within `wait_ms`.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(std::string_view bytes) { (void)!write(fd_, bytes.data(), bytes.size()); }
  std::string Receive(int wait_ms) {
    std::string out;
    timeval tv{0, wait_ms * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(GdbInteropTest, HostilePacketsLeaveTheServerWorking) {
  {
    RawClient raw(server_->port());
    ASSERT_TRUE(raw.connected());
    raw.Send("$g#00");                                         // bad checksum
    raw.Send("$" + std::string(3 * kMaxPacket, 'M') + "#00");  // overlong
    raw.Send(std::string(100000, 'x'));                        // junk
    raw.Send("$m" + std::string(40, 'f') + ",4#00");           // bad number, bad checksum
    raw.Send(Frame("m" + std::string(40, 'f') + ",4"));        // bad number
    raw.Send(Frame("Hg99"));
    raw.Send(Frame("vCont;s:zz"));
    raw.Send(Frame("Z2,3000,ffffffffffffffff"));
    raw.Send(Frame("qXfer:features:read:target.xml:ffffffffffffffff,ffff"));
    raw.Send("$qSupp");  // cut off mid-packet by the disconnect
    const std::string answers = raw.Receive(500);
    EXPECT_NE(answers.find("-"), std::string::npos);
    EXPECT_NE(answers.find("$E16#"), std::string::npos);
  }
  // A client that leaves mid-packet left the guest running; a real gdb
  // attaches afterwards as if nothing happened.
  const std::string out = RunGdb(server_->address(), "p/x $cr3\ndetach\n");
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("0x9000"), std::string::npos);
}

TEST_F(GdbInteropTest, SecondClientIsRefused) {
  RawClient first(server_->port());
  ASSERT_TRUE(first.connected());
  first.Send(Frame("?"));
  EXPECT_NE(first.Receive(300).find("T02"), std::string::npos);
  RawClient second(server_->port());
  // Accepted and closed at once: EOF, no reply.
  second.Send(Frame("?"));
  EXPECT_EQ(second.Receive(300), "");
  first.Send(Frame("g"));
  EXPECT_NE(first.Receive(300).find("$"), std::string::npos);
}

TEST_F(GdbInteropTest, ClientThatNeverReadsIsDropped) {
  RawClient flood(server_->port());
  ASSERT_TRUE(flood.connected());
  // Each `m` asks for 8 KiB of hex; the client never reads the replies.
  const std::string request = Frame("m1000,2000");
  std::string burst;
  for (int i = 0; i < 64; ++i) burst += request;
  for (int i = 0; i < 64; ++i) flood.Send(burst);
  // The server is still there for a real gdb once the flooder is dropped.
  const std::string out = RunGdb(server_->address(), "p/x $cr3\ndetach\n");
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("0x9000"), std::string::npos);
}

TEST(GdbEndpoint, Parsing) {
  auto tcp = ParseGdbEndpoint("tcp:1234");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 1234);
  auto qemu_style = ParseGdbEndpoint("tcp::1234");
  ASSERT_TRUE(qemu_style);
  EXPECT_EQ(qemu_style->host, "127.0.0.1");
  auto any = ParseGdbEndpoint("tcp:0.0.0.0:9");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "0.0.0.0");
  auto unix_socket = ParseGdbEndpoint("unix:/tmp/g.sock");
  ASSERT_TRUE(unix_socket);
  EXPECT_EQ(unix_socket->path, "/tmp/g.sock");
  for (const char* bad : {"1234", "tcp:", "tcp:99999", "tcp:12x", "unix:", "tcp:host:1", "udp:1"}) {
    auto r = ParseGdbEndpoint(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().exit_status(), 64) << bad;
    EXPECT_NE(r.error().ToString().find(bad), std::string::npos) << r.error().ToString();
  }
}

TEST(GdbServerUnix, ServesOnAUnixSocket) {
  ASSERT_TRUE(HaveGdb());
  FakeTarget target(1);
  GdbEndpoint endpoint;
  endpoint.kind = GdbEndpoint::Kind::kUnix;
  endpoint.path = "/tmp/vmm-gdb-test-" + std::to_string(getpid()) + ".sock";
  auto server = GdbServer::Start(endpoint, target);
  ASSERT_TRUE(server) << server.error().ToString();
  const std::string out = RunGdb(endpoint.path, "p/x $cr3\ndetach\n");
  SCOPED_TRACE(out);
  EXPECT_NE(out.find("0x9000"), std::string::npos);
}

}  // namespace
}  // namespace vmm::gdb
