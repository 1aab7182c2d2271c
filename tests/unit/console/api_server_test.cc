// The API server over a real Unix socket: keep-alive, errors, limits.
#include "vmm/api/api_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <thread>

#include "tests/unit/console/fake_vm_control.h"
#include "tests/unit/console/test_util.h"

namespace vmm {
namespace {

using namespace testing_support;

// Reads one response (headers + Content-Length body).
std::string ReadResponse(int fd) {
  std::string got = ReadContaining(fd, "\r\n\r\n");
  size_t end = got.find("\r\n\r\n");
  if (end == std::string::npos) return got;
  size_t length = 0;
  if (size_t at = got.find("Content-Length: "); at != std::string::npos && at < end) {
    length = std::stoul(got.substr(at + 16));
  }
  size_t total = end + 4 + length;
  if (got.size() < total) got += ReadAtLeast(fd, total - got.size());
  return got;
}

class ApiServerTest : public testing::Test {
 protected:
  void SetUp() override {
    auto server = ApiServer::Create(io_.io(), dir_.Path("api.sock"), vm_);
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
  }
  void TearDown() override {
    io_.Stop();
    server_.reset();
  }
  int Connect() { return ConnectUnix(dir_.Path("api.sock")); }

  TempDir dir_;
  IoThread io_;
  FakeVmControl vm_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, SocketHasMode0600) {
  struct stat st;
  ASSERT_EQ(stat(dir_.Path("api.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ApiServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  int fd = Connect();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string r1 = ReadResponse(fd);
  EXPECT_TRUE(r1.starts_with("HTTP/1.1 200 OK\r\n")) << r1;
  EXPECT_NE(r1.find("\"state\":\"Running\""), std::string::npos);

  ASSERT_TRUE(SendAll(fd,
                      "PUT /vm/state HTTP/1.1\r\nHost: localhost\r\n"
                      "Content-Length: 18\r\n\r\n{\"state\":\"Paused\"}"));
  EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 204 No Content\r\n"));
  EXPECT_TRUE(vm_.paused);

  ASSERT_TRUE(SendAll(fd, "GET /nowhere HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 404 Not Found\r\n"));
  close(fd);
}

TEST_F(ApiServerTest, PipelinedRequestsAreAnsweredInOrder) {
  int fd = Connect();
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"));
  std::string both = ReadContaining(fd, "exits_total");
  size_t first = both.find("HTTP/1.1 200");
  size_t second = both.find("HTTP/1.1 200", first + 1);
  ASSERT_NE(second, std::string::npos) << both;
  EXPECT_NE(both.find("\"state\""), std::string::npos);
  EXPECT_LT(both.find("\"state\""), second);  // /vm answered first
  EXPECT_GT(both.find("exits_total"), second);
  close(fd);
}

TEST_F(ApiServerTest, SplitRequestIsReassembled) {
  int fd = Connect();
  std::string req = "PUT /actions HTTP/1.1\r\nContent-Length: 21\r\n\r\n{\"action\":\"Shutdown\"}";
  for (char c : req) {
    ASSERT_TRUE(SendAll(fd, std::string_view(&c, 1)));
  }
  EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 204"));
  EXPECT_EQ(vm_.calls, std::vector<std::string>{"Shutdown"});
  close(fd);
}

TEST_F(ApiServerTest, MalformedHttpGets400AndTheConnectionCloses) {
  int fd = Connect();
  ASSERT_TRUE(SendAll(fd, "HELLO\r\n\r\n"));
  bool eof = false;
  std::string got = ReadUntil(
      fd, [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request\r\n")) << got;
  EXPECT_NE(got.find("fault_message"), std::string::npos);
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(eof);
  close(fd);
}

TEST_F(ApiServerTest, BadJsonGets400AndKeepsTheConnection) {
  int fd = Connect();
  ASSERT_TRUE(SendAll(fd, "PUT /vm/state HTTP/1.1\r\nContent-Length: 5\r\n\r\n{bad}"));
  std::string r = ReadResponse(fd);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 400")) << r;
  EXPECT_NE(r.find("not valid JSON"), std::string::npos);
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 200"));
  close(fd);
}

TEST_F(ApiServerTest, OversizeHeadersGet431AndClose) {
  int fd = Connect();
  std::string req = "GET /vm HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  SendAll(fd, req);  // the server may close before reading it all
  bool eof = false;
  std::string got = ReadUntil(
      fd, [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 431")) << got.substr(0, 100);
  EXPECT_TRUE(eof);
  close(fd);
}

TEST_F(ApiServerTest, ExpectContinueGets100ThenTheResponse) {
  int fd = Connect();
  ASSERT_TRUE(SendAll(fd,
                      "PUT /actions HTTP/1.1\r\nContent-Length: 18\r\n"
                      "Expect: 100-continue\r\n\r\n"));
  EXPECT_EQ(ReadContaining(fd, "\r\n\r\n"), "HTTP/1.1 100 Continue\r\nServer: vmm\r\n\r\n");
  ASSERT_TRUE(SendAll(fd, "{\"action\":\"Reset\"}"));
  EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 204"));
  close(fd);
}

TEST_F(ApiServerTest, ConnectionCloseIsHonoured) {
  int fd = Connect();
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\nConnection: close\r\n\r\n"));
  bool eof = false;
  std::string got = ReadUntil(
      fd, [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(eof);
  close(fd);
}

TEST_F(ApiServerTest, ManyClientsAtOnce) {
  // As many connections as one process may hold (this test is one pid: a
  // fifth would close the first, ApiServerLimits.* test that), open at once.
  std::vector<int> fds;
  for (size_t i = 0; i < ApiServerOptions{}.max_per_client; ++i) fds.push_back(Connect());
  for (int fd : fds) ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n\r\n"));
  for (int fd : fds) EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 200"));
  for (int fd : fds) close(fd);
}

// GET /vm on a new connection; true on a 200.
bool OperatorGetsVm(const std::string& path) {
  int fd = ConnectUnix(path);
  if (fd < 0) return false;
  SendAll(fd, "GET /vm HTTP/1.1\r\n\r\n");
  bool ok = ReadResponse(fd).starts_with("HTTP/1.1 200");
  close(fd);
  return ok;
}

bool ClosedByServer(int fd, std::chrono::seconds within) {
  bool eof = false;
  ReadUntil(
      fd, [](const std::string&) { return false; }, within, &eof);
  return eof;
}

TEST(ApiServerLimits, FullTableClosesTheLongestIdleForANewConnection) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.max_connections = 2;
  options.max_per_client = 100;
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int a = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(a, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(a).starts_with("HTTP/1.1 200"));
  int b = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(b, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(b).starts_with("HTTP/1.1 200"));
  // A third connection is served; `a`, idle the longest, makes room.
  int c = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(c, "GET /vm HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(ReadResponse(c).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(ClosedByServer(a, std::chrono::seconds(5)));
  ASSERT_TRUE(SendAll(b, "GET /vm HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(ReadResponse(b).starts_with("HTTP/1.1 200"));
  close(a);
  close(b);
  close(c);
  io.Stop();
}

TEST(ApiServerLimits, OneClientHoldsAtMostItsShare) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.max_per_client = 2;
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int a = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(a, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(a).starts_with("HTTP/1.1 200"));
  int b = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(b, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(b).starts_with("HTTP/1.1 200"));
  int c = ConnectUnix(dir.Path("api.sock"));  // this process's third
  ASSERT_TRUE(SendAll(c, "GET /vm HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(ReadResponse(c).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(ClosedByServer(a, std::chrono::seconds(5)));
  close(a);
  close(b);
  close(c);
  io.Stop();
}

TEST(ApiServerLimits, UnfinishedRequestTimesOutWhateverItTrickles) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.request_timeout = std::chrono::milliseconds(800);
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int fd = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n"));
  // One header byte every 100 ms: each read used to re-arm the timer.
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    closed = !SendAll(fd, "X");
    if (!closed) {
      pollfd p{fd, POLLIN, 0};
      closed = poll(&p, 1, 0) == 1;  // EOF (or an error response) is readable
    }
  }
  EXPECT_TRUE(closed);
  // Closed by the request deadline, not after the 100 bytes were sent.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  close(fd);
  io.Stop();
}

TEST(ApiServerLimits, IdleConnectionsTimeOut) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(500);
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int fd = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(ClosedByServer(fd, std::chrono::seconds(5)));
  close(fd);
  io.Stop();
}

// Finding 6 of the hostile-input review: clients that never finish a
// request used to fill the table and lock the operator out. Here 16, then
// 200, connections sit inside unfinished requests; the operator's GET /vm
// is still answered. The latency is printed for docs/api.md, not asserted.
TEST(ApiServerLimits, SlowClientsDoNotLockOutTheOperator) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.max_per_client = 1000;  // every client here is this process
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  std::vector<int> slow;
  for (int count : {16, 200}) {
    while (static_cast<int>(slow.size()) < count) {
      int fd = ConnectUnix(dir.Path("api.sock"));
      ASSERT_GE(fd, 0);
      SendAll(fd, "GET /vm HTTP/1.1\r\nHost: x");  // and never finish
      slow.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // all accepted
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(OperatorGetsVm(dir.Path("api.sock"))) << count << " slow clients";
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::printf("api: GET /vm with %d slow clients open: %lld us\n", count,
                static_cast<long long>(us));
  }
  for (int fd : slow) close(fd);
  io.Stop();
}

}  // namespace
}  // namespace vmm

namespace vmm {
namespace {

using namespace testing_support;

TEST(ApiServerLifetime, IoContextDestroyedFirstIsSafe) {
  TempDir dir;
  FakeVmControl vm;
  auto io = std::make_unique<asio::io_context>();
  auto server = ApiServer::Create(*io, dir.Path("api.sock"), vm);
  ASSERT_TRUE(server.has_value());
  int fd = ConnectUnix(dir.Path("api.sock"));
  ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n"));  // a connection mid-request
  io->run_for(std::chrono::milliseconds(50));
  io.reset();
  EXPECT_FALSE(std::filesystem::exists(dir.Path("api.sock")));
  EXPECT_EQ((*server)->socket_path(), dir.Path("api.sock"));
  server->reset();
  close(fd);
}

}  // namespace
}  // namespace vmm
