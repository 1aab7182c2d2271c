// A small, strict HTTP/1.1 request parser and response writer (RFC 9112),
// enough for the control API: request line, header fields, Content-Length
// bodies. No chunked transfer coding (501), no obsolete line folding (400),
// no absolute-form targets (400). Every size is bounded (Limits), so a
// hostile client cannot make the parser hold more than about
// max_header_bytes + max_body_bytes of memory.
//
// Incremental: Feed() whatever arrived, then call Parse() until it returns
// kNeedMore. Bytes after a complete request stay buffered for the next one
// (pipelining). Not thread-safe; one parser per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmm::http {

struct Limits {
  size_t max_request_line = 8 * 1024;   // 414 beyond
  size_t max_header_bytes = 16 * 1024;  // request line + fields; 431 beyond
  size_t max_header_count = 64;         // 431 beyond
  size_t max_body_bytes = 64 * 1024;    // 413 beyond
};

struct Request {
  std::string method;
  std::string target;  // origin-form: "/path[?query]"
  std::string path;    // target without the query
  int minor_version = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
  bool expect_continue = false;

  // The first value of a header (name in lower case), if present.
  std::optional<std::string_view> Header(std::string_view name) const;
};

class RequestParser {
 public:
  enum class Status { kNeedMore, kComplete, kError };

  explicit RequestParser(Limits limits = {}) : limits_(limits) {}

  // Appends received bytes. Beyond what one request may hold, bytes are not
  // stored: Parse() reports the error.
  void Feed(std::string_view data);

  // Advances. kComplete: TakeRequest() has a request. kError: error_status()
  // and error_message() say why; the connection must be closed after the
  // error response (the stream cannot be resynchronised).
  Status Parse();

  Request TakeRequest();

  // True once the header section of the current request has been parsed and
  // its body is still awaited (for "Expect: 100-continue").
  bool awaiting_body() const { return state_ == State::kBody; }
  const Request& current() const { return request_; }

  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  enum class State { kRequestLine, kHeaders, kBody, kComplete, kError };

  Status Fail(int status, std::string message);
  // Finds the next line (ending "\n", optional "\r" before it). Returns
  // false if incomplete. Sets *line without the terminator.
  bool NextLine(std::string_view* line, Status* status, size_t limit, int limit_status,
                const char* what);
  Status ParseRequestLine(std::string_view line);
  Status ParseHeaderLine(std::string_view line);
  Status FinishHeaders();
  void Compact();

  Limits limits_;
  State state_ = State::kRequestLine;
  std::string buffer_;
  size_t pos_ = 0;           // start of unparsed bytes in buffer_
  size_t header_bytes_ = 0;  // bytes of the current header section so far
  size_t body_length_ = 0;
  bool saw_content_length_ = false;
  Request request_;
  int error_status_ = 0;
  std::string error_message_;
};

struct Response {
  int status = 200;
  std::string body;                                          // JSON, a PNG, or empty
  std::string content_type = "application/json";             // of a non-empty body
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool close = false;                                        // send "Connection: close"

  std::string Serialize() const;
};

std::string_view ReasonPhrase(int status);

// {"fault_message": message} with the given status (Firecracker's error shape).
Response ErrorResponse(int status, std::string_view message);

}  // namespace vmm::http
