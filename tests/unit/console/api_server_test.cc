// The API server over a real Unix socket: keep-alive, errors, limits.
#include "vmm/api/api_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) fds.push_back(Connect());
  for (int fd : fds) ASSERT_TRUE(SendAll(fd, "GET /vm HTTP/1.1\r\n\r\n"));
  for (int fd : fds) EXPECT_TRUE(ReadResponse(fd).starts_with("HTTP/1.1 200"));
  for (int fd : fds) close(fd);
}

TEST(ApiServerLimits, ConnectionsBeyondTheLimitAreClosed) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.max_connections = 2;
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int a = ConnectUnix(dir.Path("api.sock"));
  int b = ConnectUnix(dir.Path("api.sock"));
  // Make sure both are accepted before the third.
  ASSERT_TRUE(SendAll(a, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(a).starts_with("HTTP/1.1 200"));
  ASSERT_TRUE(SendAll(b, "GET /vm HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ReadResponse(b).starts_with("HTTP/1.1 200"));
  int c = ConnectUnix(dir.Path("api.sock"));
  bool eof = false;
  ReadUntil(
      c, [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(eof);
  close(a);
  // A slot frees up once a connection closes.
  EXPECT_TRUE(WaitFor([&] {
    int d = ConnectUnix(dir.Path("api.sock"));
    SendAll(d, "GET /vm HTTP/1.1\r\n\r\n");
    bool ok = ReadResponse(d).starts_with("HTTP/1.1 200");
    close(d);
    return ok;
  }));
  close(b);
  close(c);
  io.Stop();
}

TEST(ApiServerLimits, IdleConnectionsTimeOut) {
  TempDir dir;
  IoThread io;
  FakeVmControl vm;
  ApiServerOptions options;
  options.idle_timeout = std::chrono::seconds(1);
  auto server = ApiServer::Create(io.io(), dir.Path("api.sock"), vm, options);
  ASSERT_TRUE(server.has_value());
  int fd = ConnectUnix(dir.Path("api.sock"));
  SendAll(fd, "GET /vm HTTP/1.1\r\n");  // and never finish
  bool eof = false;
  ReadUntil(
      fd, [](const std::string&) { return false; }, std::chrono::seconds(5), &eof);
  EXPECT_TRUE(eof);
  close(fd);
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
