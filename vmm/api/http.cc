#include "vmm/api/http.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace vmm::http {
namespace {

// RFC 9110 §5.6.2 tchar.
bool IsTchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTchar); }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` holds `token` (case-insensitive).
bool ListHasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = TrimOws(value.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Quotes a client-supplied string for an error message: printable ASCII
// only, at most 64 bytes, so a message can neither grow without bound nor
// carry control characters.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  if (s.size() > 64) out += "...";
  out += "\"";
  return out;
}

}  // namespace

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

void RequestParser::Feed(std::string_view data) {
  // A request never needs more than this; anything beyond is an error that
  // Parse() reports before it could be used, so it need not be stored.
  const size_t cap = limits_.max_header_bytes + limits_.max_body_bytes + 4096;
  if (buffered() >= cap) return;
  buffer_.append(data.substr(0, cap - buffered()));
}

RequestParser::Status RequestParser::Fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
  return Status::kError;
}

bool RequestParser::NextLine(std::string_view* line, Status* status, size_t limit, int limit_status,
                             const char* what) {
  std::string_view rest(buffer_.data() + pos_, buffer_.size() - pos_);
  size_t nl = rest.substr(0, limit + 2).find('\n');
  if (nl == std::string_view::npos) {
    if (rest.size() > limit + 1) {
      *status = Fail(limit_status, fmt::format("{} longer than {} bytes", what, limit));
    } else {
      *status = Status::kNeedMore;
    }
    return false;
  }
  std::string_view l = rest.substr(0, nl);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (l.size() > limit) {
    *status = Fail(limit_status, fmt::format("{} longer than {} bytes", what, limit));
    return false;
  }
  if (l.find('\r') != std::string_view::npos) {
    *status = Fail(400, fmt::format("bare CR in {}", what));
    return false;
  }
  header_bytes_ += nl + 1;
  if (header_bytes_ > limits_.max_header_bytes) {
    *status =
        Fail(431, fmt::format("header section longer than {} bytes", limits_.max_header_bytes));
    return false;
  }
  pos_ += nl + 1;
  *line = l;
  return true;
}

RequestParser::Status RequestParser::ParseRequestLine(std::string_view line) {
  // method SP request-target SP HTTP-version (RFC 9112 §3), single spaces.
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, fmt::format("malformed request line {}", Quote(line)));
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, fmt::format("invalid method {}", Quote(method)));
  if (target.empty() || target.front() != '/') {
    return Fail(400, fmt::format("request target {} is not an absolute path", Quote(target)));
  }
  for (char c : target) {
    if (c <= 0x20 || c >= 0x7f) {
      return Fail(400, fmt::format("invalid character in request target {}", Quote(target)));
    }
  }
  if (version == "HTTP/1.1") {
    request_.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    request_.minor_version = 0;
  } else if (version.size() == 8 && version.starts_with("HTTP/") && version[6] == '.' &&
             std::isdigit(static_cast<unsigned char>(version[5])) &&
             std::isdigit(static_cast<unsigned char>(version[7]))) {
    return Fail(505, fmt::format("HTTP version {} is not supported", Quote(version)));
  } else {
    return Fail(400, fmt::format("invalid HTTP version {}", Quote(version)));
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.path = std::string(target.substr(0, target.find('?')));
  state_ = State::kHeaders;
  return Status::kNeedMore;
}

RequestParser::Status RequestParser::ParseHeaderLine(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete line folding in header section");
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Fail(400, fmt::format("header line without a colon: {}", Quote(line)));
  }
  std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Fail(400, fmt::format("invalid header name {}", Quote(name)));
  std::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return Fail(400, fmt::format("control character in header {}", Quote(name)));
    }
  }
  if (request_.headers.size() >= limits_.max_header_count) {
    return Fail(431, fmt::format("more than {} header fields", limits_.max_header_count));
  }
  std::string lower = ToLower(name);
  if (lower == "content-length") {
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
      return Fail(400, fmt::format("invalid Content-Length {}", Quote(value)));
    }
    if (saw_content_length_ && length != body_length_) {
      return Fail(400, "conflicting Content-Length headers");
    }
    if (length > limits_.max_body_bytes) {
      return Fail(413, fmt::format("body of {} bytes exceeds the limit of {} bytes", length,
                                   limits_.max_body_bytes));
    }
    saw_content_length_ = true;
    body_length_ = static_cast<size_t>(length);
  }
  request_.headers.emplace_back(std::move(lower), std::string(value));
  return Status::kNeedMore;
}

RequestParser::Status RequestParser::FinishHeaders() {
  if (request_.Header("transfer-encoding")) {
    return Fail(501, "Transfer-Encoding is not supported; send Content-Length");
  }
  auto connection = request_.Header("connection");
  if (request_.minor_version == 0) {
    request_.keep_alive = connection && ListHasToken(*connection, "keep-alive");
  } else {
    request_.keep_alive = !(connection && ListHasToken(*connection, "close"));
  }
  if (auto expect = request_.Header("expect")) {
    if (!EqualsIgnoreCase(*expect, "100-continue")) {
      return Fail(417, fmt::format("unsupported expectation {}", Quote(*expect)));
    }
    request_.expect_continue = true;
  }
  state_ = body_length_ > 0 ? State::kBody : State::kComplete;
  return state_ == State::kComplete ? Status::kComplete : Status::kNeedMore;
}

RequestParser::Status RequestParser::Parse() {
  for (;;) {
    std::string_view line;
    Status status = Status::kNeedMore;
    switch (state_) {
      case State::kError:
        return Status::kError;
      case State::kComplete:
        return Status::kComplete;
      case State::kRequestLine:
        if (!NextLine(&line, &status, limits_.max_request_line, 414, "request line")) return status;
        if (line.empty()) continue;  // RFC 9112 §2.2: ignore empty lines before a request
        if (ParseRequestLine(line) == Status::kError) return Status::kError;
        break;
      case State::kHeaders:
        if (!NextLine(&line, &status, limits_.max_header_bytes, 431, "header line")) return status;
        if (line.empty()) {
          status = FinishHeaders();
          if (status != Status::kNeedMore) return status;
        } else if (ParseHeaderLine(line) == Status::kError) {
          return Status::kError;
        }
        break;
      case State::kBody:
        if (buffered() < body_length_) return Status::kNeedMore;
        request_.body.assign(buffer_, pos_, body_length_);
        pos_ += body_length_;
        state_ = State::kComplete;
        return Status::kComplete;
    }
  }
}

Request RequestParser::TakeRequest() {
  Request out = std::move(request_);
  request_ = Request{};
  state_ = State::kRequestLine;
  header_bytes_ = 0;
  body_length_ = 0;
  saw_content_length_ = false;
  Compact();
  return out;
}

void RequestParser::Compact() {
  buffer_.erase(0, pos_);
  pos_ = 0;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string Response::Serialize() const {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: vmm\r\n", status, ReasonPhrase(status));
  // RFC 9110 §8.6: no Content-Length in 1xx and 204 responses.
  if (status >= 200 && status != 204) {
    if (!body.empty()) out += fmt::format("Content-Type: {}\r\n", content_type);
    out += fmt::format("Content-Length: {}\r\n", body.size());
  }
  for (const auto& [name, value] : headers) out += fmt::format("{}: {}\r\n", name, value);
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

Response ErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  nlohmann::json body = {{"fault_message", message}};
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace vmm::http
