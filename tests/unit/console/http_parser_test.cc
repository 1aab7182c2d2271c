#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "vmm/api/http.h"

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
  std::string req = "PUT /vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}";
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
        BadCase{"ControlCharInValue",
                "GET /vm HTTP/1.1\r\nX-A: a\x01"
                "b\r\n\r\n",
                400},
        BadCase{"NegativeLength", "PUT /vm/state HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        BadCase{"NonNumericLength", "PUT /vm/state HTTP/1.1\r\nContent-Length: 1a\r\n\r\n", 400},
        BadCase{"ConflictingLengths",
                "PUT /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400},
        BadCase{"HugeLength", "PUT /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                400},
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

namespace vmm::http {
namespace {

// Parses `text` fed as the given pieces; returns a summary of every request
// and the final state, so different splits can be compared.
std::string ParseSummary(const std::vector<std::string_view>& pieces) {
  RequestParser p;
  std::string summary;
  for (std::string_view piece : pieces) {
    p.Feed(piece);
    for (;;) {
      auto status = p.Parse();
      if (status == RequestParser::Status::kComplete) {
        Request r = p.TakeRequest();
        summary += r.method + " " + r.target + " " + std::to_string(r.headers.size()) + " [" +
                   r.body + "] " + (r.keep_alive ? "ka" : "close") + "\n";
        continue;
      }
      if (status == RequestParser::Status::kError) {
        return summary + "error " + std::to_string(p.error_status()) + "\n";
      }
      break;
    }
  }
  return summary + "needmore " + std::to_string(p.buffered()) + "\n";
}

TEST(HttpParser, EverySplitPointGivesTheSameResult) {
  const std::string inputs[] = {
      "GET /vm HTTP/1.1\r\nHost: a\r\n\r\nPUT /vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n"
      "{\"state\":\"Paused\"}GET /metrics HTTP/1.0\r\n\r\n",
      "GET /vm HTTP/1.1\nA: b\n\nGET /x HTTP/1.1\r\nBad Header\r\n\r\n",
      "\r\nPUT /actions HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabcGET",
      "GET /vm HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
  };
  for (const std::string& input : inputs) {
    std::string whole = ParseSummary({input});
    for (size_t cut = 0; cut <= input.size(); ++cut) {
      std::string_view v = input;
      ASSERT_EQ(ParseSummary({v.substr(0, cut), v.substr(cut)}), whole)
          << "split at " << cut << " of " << testing::PrintToString(input);
    }
  }
}

// Random bytes and random mutations of valid requests never crash the
// parser, and its buffer stays bounded (a deterministic mini-fuzzer; the
// libFuzzer target is tests/console/http_parser_fuzz.cc).
TEST(HttpParser, RandomInputNeverCrashesAndStaysBounded) {
  std::mt19937 rng(7);
  const std::string seed =
      "PUT /vm/state HTTP/1.1\r\nHost: localhost\r\nContent-Length: 18\r\n\r\n"
      "{\"state\":\"Paused\"}";
  const Limits limits;
  const size_t bound = limits.max_header_bytes + limits.max_body_bytes + 4096;
  for (int round = 0; round < 3000; ++round) {
    std::string data = seed;
    int mutations = static_cast<int>(rng() % 8);
    for (int m = 0; m < mutations; ++m) {
      size_t at = rng() % (data.size() + 1);
      switch (rng() % 3) {
        case 0:
          data.insert(at, 1, static_cast<char>(rng() % 256));
          break;
        case 1:
          if (at < data.size()) data.erase(at, 1);
          break;
        default:
          if (at < data.size()) data[at] = static_cast<char>(rng() % 256);
      }
    }
    if (round % 10 == 0) {
      data.resize(rng() % 300);
      for (char& c : data) c = static_cast<char>(rng() % 256);
    }
    RequestParser p;
    size_t pos = 0;
    while (pos < data.size()) {
      size_t n = 1 + rng() % 64;
      p.Feed(std::string_view(data).substr(pos, n));
      pos += n;
      RequestParser::Status s;
      while ((s = p.Parse()) == RequestParser::Status::kComplete) p.TakeRequest();
      ASSERT_LE(p.buffered(), bound);
      if (s == RequestParser::Status::kError) {
        ASSERT_GE(p.error_status(), 400);
        break;
      }
    }
  }
}

}  // namespace
}  // namespace vmm::http
