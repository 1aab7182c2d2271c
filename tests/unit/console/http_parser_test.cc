#include "vmm/api/http.h"

#include <gtest/gtest.h>

#include <string>

#include <fmt/format.h>

namespace vmm::http {
namespace {

using Status = RequestParser::Status;

Status FeedAll(RequestParser& p, std::string_view data) {
  p.Feed(data);
  return p.Parse();
}

TEST(HttpParser, ParsesGetWithHeaders) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "GET /vm HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"),
            Status::kComplete);
  Request r = p.TakeRequest();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/vm");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.Header("host"), "localhost");
  EXPECT_TRUE(r.body.empty());
}

TEST(HttpParser, SplitReadsOneByteAtATime) {
  std::string req =
      "PUT /vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}";
  RequestParser p;
  for (size_t i = 0; i + 1 < req.size(); ++i) {
    p.Feed(req.substr(i, 1));
    ASSERT_EQ(p.Parse(), Status::kNeedMore) << "after byte " << i;
  }
  p.Feed(req.substr(req.size() - 1));
  ASSERT_EQ(p.Parse(), Status::kComplete);
  EXPECT_EQ(p.TakeRequest().body, "{\"state\":\"Paused\"}");
}

TEST(HttpParser, PipelinedRequestsParseInTurn) {
  RequestParser p;
  p.Feed("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c");
  ASSERT_EQ(p.Parse(), Status::kComplete);
  EXPECT_EQ(p.TakeRequest().path, "/a");
  ASSERT_EQ(p.Parse(), Status::kComplete);
  EXPECT_EQ(p.TakeRequest().path, "/b");
  EXPECT_EQ(p.Parse(), Status::kNeedMore);
  p.Feed(" HTTP/1.1\r\n\r\n");
  ASSERT_EQ(p.Parse(), Status::kComplete);
  EXPECT_EQ(p.TakeRequest().path, "/c");
}

TEST(HttpParser, BareLfLineEndsAreAccepted) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "GET /metrics HTTP/1.1\nHost: x\n\n"), Status::kComplete);
  EXPECT_EQ(p.TakeRequest().path, "/metrics");
}

TEST(HttpParser, QueryIsSplitFromPath) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "GET /vm?pretty=1 HTTP/1.1\r\n\r\n"), Status::kComplete);
  Request r = p.TakeRequest();
  EXPECT_EQ(r.path, "/vm");
  EXPECT_EQ(r.target, "/vm?pretty=1");
}

struct BadCase {
  const char* name;
  const char* text;
  int status;
};

class HttpParserRejects : public testing::TestWithParam<BadCase> {};

TEST_P(HttpParserRejects, WithStatus) {
  RequestParser p;
  EXPECT_EQ(FeedAll(p, GetParam().text), Status::kError);
  EXPECT_EQ(p.error_status(), GetParam().status) << p.error_message();
  EXPECT_FALSE(p.error_message().empty());
  // Once failed, it stays failed.
  p.Feed("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(p.Parse(), Status::kError);
}

INSTANTIATE_TEST_SUITE_P(
    BadRequests, HttpParserRejects,
    testing::Values(
        BadCase{"MissingVersion", "GET /vm\r\n\r\n", 400},
        BadCase{"ExtraSpace", "GET  /vm HTTP/1.1\r\n\r\n", 400},
        BadCase{"TrailingSpace", "GET /vm HTTP/1.1 \r\n\r\n", 400},
        BadCase{"BadMethodChars", "G(T /vm HTTP/1.1\r\n\r\n", 400},
        BadCase{"AbsoluteFormTarget", "GET http://localhost/vm HTTP/1.1\r\n\r\n", 400},
        BadCase{"NotHttp", "GET /vm FTP/1.1\r\n\r\n", 400},
        BadCase{"Http2", "GET /vm HTTP/2.0\r\n\r\n", 505},
        BadCase{"Garbage", "\x16\x03\x01\x02\x05\x01\xfc\x03\x03\r\n", 400},
        BadCase{"BareCr", "GET /vm HTTP/1.1\rHost: x\r\n\r\n", 400},
        BadCase{"HeaderWithoutColon", "GET /vm HTTP/1.1\r\nHost localhost\r\n\r\n", 400},
        BadCase{"SpaceBeforeColon", "GET /vm HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        BadCase{"ObsFold", "GET /vm HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400},
        BadCase{"ControlCharInValue", "GET /vm HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", 400},
        BadCase{"NegativeLength", "PUT /vm/state HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        BadCase{"NonNumericLength", "PUT /vm/state HTTP/1.1\r\nContent-Length: 1a\r\n\r\n", 400},
        BadCase{"ConflictingLengths",
                "PUT /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400},
        BadCase{"HugeLength",
                "PUT /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        BadCase{"BodyTooLarge", "PUT /a HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413},
        BadCase{"Chunked", "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        BadCase{"UnknownExpectation", "PUT /a HTTP/1.1\r\nExpect: magic\r\n\r\n", 417}),
    [](const testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(HttpParser, OversizeRequestLineIs414EvenWithoutNewline) {
  RequestParser p;
  std::string line = "GET /" + std::string(9000, 'a');
  EXPECT_EQ(FeedAll(p, line), Status::kError);
  EXPECT_EQ(p.error_status(), 414);
}

TEST(HttpParser, OversizeHeaderSectionIs431) {
  RequestParser p;
  std::string req = "GET /vm HTTP/1.1\r\n";
  for (int i = 0; i < 400; ++i) req += "X-Filler: " + std::string(50, 'y') + "\r\n";
  p.Feed(req);
  EXPECT_EQ(p.Parse(), Status::kError);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParser, TooManyHeaderFieldsIs431) {
  RequestParser p;
  std::string req = "GET /vm HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) req += "A: b\r\n";
  EXPECT_EQ(FeedAll(p, req + "\r\n"), Status::kError);
  EXPECT_EQ(p.error_status(), 431);
}

TEST(HttpParser, EndlessHeaderLineIsRejectedAndBufferStaysBounded) {
  RequestParser p;
  p.Feed("GET /vm HTTP/1.1\r\nX: ");
  Status s = Status::kNeedMore;
  std::string chunk(4096, 'z');
  for (int i = 0; i < 1000 && s == Status::kNeedMore; ++i) {
    p.Feed(chunk);
    s = p.Parse();
  }
  EXPECT_EQ(s, Status::kError);
  EXPECT_EQ(p.error_status(), 431);
  EXPECT_LE(p.buffered(), 16u * 1024 + 64 * 1024 + 4096);
}

TEST(HttpParser, Http10ClosesUnlessKeepAlive) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "GET /vm HTTP/1.0\r\n\r\n"), Status::kComplete);
  EXPECT_FALSE(p.TakeRequest().keep_alive);
  ASSERT_EQ(FeedAll(p, "GET /vm HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), Status::kComplete);
  EXPECT_TRUE(p.TakeRequest().keep_alive);
}

TEST(HttpParser, ConnectionCloseIsHonoured) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "GET /vm HTTP/1.1\r\nConnection: foo, close\r\n\r\n"), Status::kComplete);
  EXPECT_FALSE(p.TakeRequest().keep_alive);
}

TEST(HttpParser, ExpectContinueIsReportedBeforeTheBody) {
  RequestParser p;
  EXPECT_EQ(FeedAll(p, "PUT /a HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
            Status::kNeedMore);
  EXPECT_TRUE(p.awaiting_body());
  EXPECT_TRUE(p.current().expect_continue);
  EXPECT_EQ(FeedAll(p, "{}"), Status::kComplete);
}

TEST(HttpParser, LeadingEmptyLinesAreIgnored) {
  RequestParser p;
  ASSERT_EQ(FeedAll(p, "\r\n\r\nGET /vm HTTP/1.1\r\n\r\n"), Status::kComplete);
}

TEST(HttpResponse, SerializeHasLengthTypeAndClose) {
  Response r = ErrorResponse(404, "no such path: /x");
  r.close = true;
  std::string s = r.Serialize();
  EXPECT_TRUE(s.starts_with("HTTP/1.1 404 Not Found\r\n")) << s;
  EXPECT_NE(s.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(s.find(fmt::format("Content-Length: {}\r\n", r.body.size())), std::string::npos);
  EXPECT_NE(s.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(s.ends_with("\r\n\r\n" + r.body));
  EXPECT_EQ(r.body, R"({"fault_message":"no such path: /x"})");
}

TEST(HttpResponse, NoContentHasNoLength) {
  Response r;
  r.status = 204;
  EXPECT_EQ(r.Serialize(), "HTTP/1.1 204 No Content\r\nServer: vmm\r\n\r\n");
}

}  // namespace
}  // namespace vmm::http
