#include "vmm/api/api_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <deque>

#include "base/fd_hygiene.h"
#include "base/io_shutdown_hooks.h"
#include "base/unix_socket.h"

namespace vmm {
namespace {

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

http::Response JsonResponse(int status, const nlohmann::json& body) {
  http::Response r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

http::Response NoContent() {
  http::Response r;
  r.status = 204;
  return r;
}

http::Response MethodNotAllowed(const http::Request& request, std::string_view allow) {
  http::Response r =
      http::ErrorResponse(405, fmt::format("method {} is not allowed on {}; use {}",
                                           request.method.substr(0, 16), request.path, allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

http::Response FromResult(const base::Result<void>& result, std::string_view what) {
  if (result) return NoContent();
  const base::Error& e = result.error();
  int status =
      (e.kind() == base::ErrorKind::kUsage || e.kind() == base::ErrorKind::kConfig) ? 400 : 500;
  return http::ErrorResponse(status, fmt::format("{}: {}", what, e.ToString()));
}

// Parses a PUT body that must be {"<field>": "<one of values>"} and nothing
// else. Returns the value, or sets *error to the 400 response.
std::optional<std::string> ParseSingleField(const http::Request& request, std::string_view field,
                                            std::initializer_list<std::string_view> values,
                                            http::Response* error) {
  std::string allowed;
  for (auto v : values) allowed += fmt::format("{}\"{}\"", allowed.empty() ? "" : ", ", v);
  if (request.body.empty()) {
    *error = http::ErrorResponse(
        400,
        fmt::format("the request body is empty; expected {{\"{}\": one of {}}}", field, allowed));
    return std::nullopt;
  }
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    *error = http::ErrorResponse(400, "the request body is not valid JSON");
    return std::nullopt;
  }
  if (!body.is_object()) {
    *error = http::ErrorResponse(
        400, fmt::format("the request body must be a JSON object, not {}", body.type_name()));
    return std::nullopt;
  }
  for (const auto& [key, value] : body.items()) {
    if (key != field) {
      nlohmann::json name = key;
      *error = http::ErrorResponse(
          400, fmt::format("unknown field {} (expected \"{}\")", Dump(name).substr(0, 80), field));
      return std::nullopt;
    }
  }
  auto it = body.find(field);
  if (it == body.end()) {
    *error = http::ErrorResponse(400, fmt::format("missing field \"{}\"", field));
    return std::nullopt;
  }
  if (!it->is_string()) {
    *error = http::ErrorResponse(
        400, fmt::format("field \"{}\" must be a string, not {}", field, it->type_name()));
    return std::nullopt;
  }
  std::string value = it->get<std::string>();
  for (auto v : values) {
    if (value == v) return value;
  }
  *error = http::ErrorResponse(400, fmt::format("invalid {} {} (expected one of {})", field,
                                                Dump(*it).substr(0, 80), allowed));
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------
// ApiRouter

http::Response ApiRouter::Handle(const http::Request& request) {
  http::Response response = Route(request);
  ++requests_;
  if (response.status >= 400) ++errors_;
  return response;
}

http::Response ApiRouter::Route(const http::Request& request) {
  const std::string& path = request.path;
  const std::string& method = request.method;
  if (path == "/vm") {
    if (method != "GET") return MethodNotAllowed(request, "GET");
    return JsonResponse(200, vm_.Info());
  }
  if (path == "/vm/state") {
    if (method != "PUT") return MethodNotAllowed(request, "PUT");
    return PutState(request);
  }
  if (path == "/actions") {
    if (method != "PUT") return MethodNotAllowed(request, "PUT");
    return PutAction(request);
  }
  if (path == "/metrics") {
    if (method != "GET") return MethodNotAllowed(request, "GET");
    nlohmann::json metrics = vm_.Metrics();
    if (!metrics.is_object()) metrics = nlohmann::json::object();
    metrics["api"] = {{"requests", requests_ + 1}, {"errors", errors_}};
    return JsonResponse(200, metrics);
  }
  if (path == "/screenshot") {
    if (method != "GET") return MethodNotAllowed(request, "GET");
    auto png = vm_.ScreenshotPng();
    if (!png) {
      return http::ErrorResponse(png.error().kind() == base::ErrorKind::kConfig ? 404 : 500,
                                 png.error().message());
    }
    http::Response response;
    response.body.assign(png->begin(), png->end());
    response.content_type = "image/png";
    return response;
  }
  return http::ErrorResponse(404, fmt::format("no such path: {}", path.substr(0, 80)));
}

http::Response ApiRouter::PutState(const http::Request& request) {
  http::Response error;
  auto state = ParseSingleField(request, "state", {"Paused", "Resumed"}, &error);
  if (!state) return error;
  if (*state == "Paused") return FromResult(vm_.Pause(), "pause");
  return FromResult(vm_.Resume(), "resume");
}

http::Response ApiRouter::PutAction(const http::Request& request) {
  http::Response error;
  auto action =
      ParseSingleField(request, "action", {"Shutdown", "Reset", "SendCtrlAltDel"}, &error);
  if (!action) return error;
  if (*action == "Shutdown") return FromResult(vm_.Shutdown(), "Shutdown");
  if (*action == "Reset") return FromResult(vm_.Reset(), "Reset");
  return FromResult(vm_.SendCtrlAltDel(), "SendCtrlAltDel");
}

// ---------------------------------------------------------------------------
// Connections (io thread)

class ApiServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(ApiServer& server, asio::local::stream_protocol::socket socket, pid_t pid)
      : server_(server),
        alive_(server.alive_),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        parser_(server.options_.limits),
        pid_(pid),
        phase_since_(Clock::now()) {}

  void Start() {
    self_in_table_ = server_.open_.insert(server_.open_.end(), weak_from_this());
    BecomeIdle();
    Read();
  }

  pid_t pid() const { return pid_; }
  bool in_request() const { return in_request_; }
  Clock::time_point phase_since() const { return phase_since_; }

  void Close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
    if (*alive_) server_.open_.erase(self_in_table_);  // Start() put it there
  }

 private:
  // Between requests: the idle timeout runs.
  void BecomeIdle() {
    in_request_ = false;
    phase_since_ = Clock::now();
    ArmTimer(server_.options_.idle_timeout, "idle");
  }
  // The first byte of a request: the request timeout runs until the
  // response is written, whatever the client sends meanwhile.
  void BeginRequest() {
    in_request_ = true;
    phase_since_ = Clock::now();
    ArmTimer(server_.options_.request_timeout, "unfinished request");
  }

  void Read() {
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              if (!*self->alive_ || self->closed_) return;
                              if (ec) {
                                self->Close();  // EOF or error: the client is gone
                                return;
                              }
                              if (!self->in_request_) self->BeginRequest();
                              self->parser_.Feed({self->buf_.data(), n});
                              self->Process();
                            });
  }

  void Process() {
    switch (parser_.Parse()) {
      case http::RequestParser::Status::kNeedMore:
        if (parser_.awaiting_body() && parser_.current().expect_continue && !sent_continue_) {
          sent_continue_ = true;
          http::Response cont;
          cont.status = 100;
          Write(cont, /*then_close=*/false, /*continue_parsing=*/false);
          return;
        }
        Read();
        return;
      case http::RequestParser::Status::kComplete: {
        http::Request request = parser_.TakeRequest();
        sent_continue_ = false;
        http::Response response = server_.router_.Handle(request);
        spdlog::debug("api: {} {} -> {}", request.method, request.path, response.status);
        bool close = !request.keep_alive;
        response.close = close;
        Write(response, close, /*continue_parsing=*/true);
        return;
      }
      case http::RequestParser::Status::kError: {
        server_.router_.CountRejected();
        spdlog::debug("api: rejected request: {} {}", parser_.error_status(),
                      parser_.error_message());
        http::Response response =
            http::ErrorResponse(parser_.error_status(), parser_.error_message());
        response.close = true;
        Write(response, /*then_close=*/true, /*continue_parsing=*/false);
        return;
      }
    }
  }

  void Write(const http::Response& response, bool then_close, bool continue_parsing) {
    out_ = response.Serialize();
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), then_close, continue_parsing](
                          const asio::error_code& ec, size_t) {
                        if (!*self->alive_ || self->closed_) return;
                        if (ec || then_close) {
                          self->Close();
                          return;
                        }
                        if (continue_parsing) {
                          // The response is out: the next request has its own deadline.
                          if (self->parser_.buffered() == 0) {
                            self->BecomeIdle();
                          } else {
                            self->BeginRequest();
                          }
                          self->Process();  // a pipelined request may be buffered
                        } else {
                          self->Read();
                        }
                      });
  }

  void ArmTimer(std::chrono::milliseconds timeout, const char* what) {
    timer_.expires_after(timeout);
    timer_.async_wait([weak = weak_from_this(), what, timeout](const asio::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || !*self->alive_) return;
      spdlog::debug("api: closing a connection: {} after {} ms", what, timeout.count());
      self->Close();
    });
  }

  ApiServer& server_;
  std::shared_ptr<bool> alive_;
  asio::local::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  http::RequestParser parser_;
  std::array<char, 4096> buf_;
  std::string out_;
  pid_t pid_;
  Clock::time_point phase_since_;
  std::list<std::weak_ptr<Connection>>::iterator self_in_table_;
  bool in_request_ = false;
  bool sent_continue_ = false;
  bool closed_ = false;
};

// ---------------------------------------------------------------------------
// ApiServer

ApiServer::ApiServer(asio::io_context& io, VmControl& vm, ApiServerOptions options)
    : io_(io), router_(vm), options_(options), alive_(std::make_shared<bool>(true)) {
  io_hooks_ = &base::IoShutdownHooks::Of(io);
  io_hook_token_ = io_hooks_->Add([this] {
    io_hooks_ = nullptr;
    *alive_ = false;
    listener_.reset();
  });
}

base::Result<std::unique_ptr<ApiServer>> ApiServer::Create(asio::io_context& io,
                                                           const std::string& socket_path,
                                                           VmControl& vm,
                                                           ApiServerOptions options) {
  std::unique_ptr<ApiServer> server(new ApiServer(io, vm, options));
  server->listener_ = TRY_CTX(base::UnixListener::Create(io, socket_path), "--api-sock");
  server->socket_path_ = socket_path;
  asio::post(io, [s = server.get(), alive = server->alive_] {
    if (*alive) s->Accept();
  });
  return server;
}

ApiServer::~ApiServer() {
  if (io_hooks_ != nullptr) io_hooks_->Remove(io_hook_token_);
  *alive_ = false;
  listener_.reset();
}

const std::string& ApiServer::socket_path() const { return socket_path_; }

void ApiServer::Accept() {
  listener_->acceptor().async_accept(
      [this, alive = alive_](const asio::error_code& ec,
                             asio::local::stream_protocol::socket socket) {
        if (!*alive || ec == asio::error::operation_aborted) return;
        if (ec) {
          spdlog::warn("api: accept failed: {}", ec.message());
          auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
          timer->async_wait([this, timer, alive](const asio::error_code& e) {
            if (!e && *alive) Accept();
          });
          return;
        }
        // Who is connecting: the peer's pid, for the per-client limit.
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
          cred.pid = 0;
        const int fd_flags = fcntl(socket.native_handle(), F_GETFD);
        if (fd_flags >= 0) (void)fcntl(socket.native_handle(), F_SETFD, fd_flags | FD_CLOEXEC);
        MakeRoom(cred.pid);
        std::make_shared<Connection>(*this, std::move(socket), cred.pid)->Start();
        Accept();
      });
}

void ApiServer::MakeRoom(pid_t pid) {
  // The victim: idle before busy, then the longest in its state.
  auto pick = [&](bool same_client_only) -> std::shared_ptr<Connection> {
    std::shared_ptr<Connection> victim;
    for (const auto& weak : open_) {
      auto c = weak.lock();
      if (!c || (same_client_only && c->pid() != pid)) continue;
      if (!victim || (!c->in_request() && victim->in_request()) ||
          (c->in_request() == victim->in_request() && c->phase_since() < victim->phase_since())) {
        victim = std::move(c);
      }
    }
    return victim;
  };
  if (pid != 0 && options_.max_per_client > 0) {
    size_t mine = 0;
    for (const auto& weak : open_) {
      if (auto c = weak.lock(); c && c->pid() == pid) ++mine;
    }
    if (mine >= options_.max_per_client) {
      if (auto victim = pick(/*same_client_only=*/true)) {
        spdlog::warn("api: client pid {} has {} connections open; closing its oldest", pid, mine);
        victim->Close();
      }
    }
  }
  while (!open_.empty() && open_.size() >= options_.max_connections) {
    auto victim = pick(/*same_client_only=*/false);
    if (!victim) break;
    spdlog::warn("api: {} connections open (the limit); closing the {} one to accept a new one",
                 open_.size(), victim->in_request() ? "oldest unfinished" : "longest idle");
    victim->Close();
  }
}

}  // namespace vmm
