#include "vmm/gdb/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <asio.hpp>
#include <charconv>
#include <optional>
#include <thread>

#include "base/fd_hygiene.h"
#include "base/unix_socket.h"
#include "vmm/gdb/session.h"

namespace vmm::gdb {

namespace {

using Socket = asio::generic::stream_protocol::socket;

}  // namespace

std::string GdbEndpoint::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return fmt::format("tcp:{}:{}", host, port);
}

base::Result<GdbEndpoint> ParseGdbEndpoint(std::string_view spec) {
  GdbEndpoint endpoint;
  if (spec.substr(0, 5) == "unix:") {
    endpoint.kind = GdbEndpoint::Kind::kUnix;
    endpoint.path = std::string(spec.substr(5));
    if (endpoint.path.empty()) {
      return base::MakeError(base::ErrorKind::kUsage, "--gdb {}: no socket path after unix:", spec);
    }
    return endpoint;
  }
  if (spec.substr(0, 4) != "tcp:") {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--gdb {}: expected tcp:PORT, tcp:HOST:PORT or unix:PATH", spec);
  }
  std::string_view rest = spec.substr(4);
  const size_t colon = rest.rfind(':');
  std::string_view port_text = rest;
  if (colon != std::string_view::npos) {
    const std::string_view host = rest.substr(0, colon);
    if (!host.empty()) endpoint.host = std::string(host);
    port_text = rest.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return base::MakeError(base::ErrorKind::kUsage, "--gdb {}: '{}' is not a TCP port (0-65535)",
                           spec, port_text);
  }
  endpoint.port = static_cast<uint16_t>(port);
  asio::error_code address_ec;
  (void)asio::ip::make_address(endpoint.host, address_ec);
  if (address_ec) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "--gdb {}: '{}' is not an IP address (names are not looked up)", spec,
                           endpoint.host);
  }
  return endpoint;
}

class GdbServer::Impl {
 public:
  Impl(GdbTarget& target) : target_(target), tcp_acceptor_(io_) {}

  base::Result<void> Bind(const GdbEndpoint& endpoint) {
    endpoint_ = endpoint;
    if (endpoint.kind == GdbEndpoint::Kind::kUnix) {
      unix_listener_ = TRY_CTX(base::UnixListener::Create(io_, endpoint.path), "--gdb");
      base::SetCloseOnExec(unix_listener_->acceptor().native_handle());
      return {};
    }
    asio::error_code ec;
    const asio::ip::tcp::endpoint address(asio::ip::make_address(endpoint.host, ec), endpoint.port);
    tcp_acceptor_.open(address.protocol(), ec);
    if (!ec) base::SetCloseOnExec(tcp_acceptor_.native_handle());
    if (!ec) tcp_acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) tcp_acceptor_.bind(address, ec);
    if (!ec) tcp_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return std::unexpected(base::Error(base::ErrorKind::kUsage,
                                         fmt::format("--gdb: cannot listen on {}:{}: {}",
                                                     endpoint.host, endpoint.port, ec.message()),
                                         ec.value()));
    }
    endpoint_.port = tcp_acceptor_.local_endpoint().port();
    return {};
  }

  void Run() {
    target_.SetStopHandler([this](const StopEvent& event) {
      asio::post(io_, [this, event] {
        if (session_) {
          session_->OnStop(event);
          MaybeFinish();
        }
      });
    });
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Impl() {
    target_.SetStopHandler(nullptr);
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string address() const {
    if (endpoint_.kind == GdbEndpoint::Kind::kUnix) return endpoint_.path;
    return fmt::format("{}:{}", endpoint_.host, endpoint_.port);
  }
  uint16_t port() const { return endpoint_.kind == GdbEndpoint::Kind::kTcp ? endpoint_.port : 0; }

 private:
  void Accept() {
    auto socket = std::make_shared<Socket>(io_);
    auto on_accept = [this, socket](const asio::error_code& ec) {
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          spdlog::warn("gdb: accept failed: {}", ec.message());
          Accept();
        }
        return;
      }
      base::SetCloseOnExec(socket->native_handle());
      if (client_) {
        spdlog::warn("gdb: refused a second client (one debugger at a time)");
        asio::error_code ignored;
        socket->close(ignored);
      } else {
        StartClient(std::move(*socket));
      }
      Accept();
    };
    if (unix_listener_) {
      unix_listener_->acceptor().async_accept(*socket, on_accept);
    } else {
      tcp_acceptor_.async_accept(*socket, on_accept);
    }
  }

  void StartClient(Socket socket) {
    if (endpoint_.kind == GdbEndpoint::Kind::kTcp) {
      const int one = 1;  // one packet at a time: no Nagle delay
      (void)setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    client_.emplace(std::move(socket));
    pending_.clear();
    writing_ = false;
    closing_ = false;
    session_ =
        std::make_unique<GdbSession>(target_, [this](std::string_view bytes) { Send(bytes); });
    spdlog::info("gdb: client connected on {}", address());
    if (auto attached = session_->Attach(); !attached) {
      spdlog::error("gdb: cannot stop the guest for the debugger: {}", attached.error().ToString());
      DropClient();
      return;
    }
    Read();
  }

  void Read() {
    client_->async_read_some(asio::buffer(buffer_), [this, generation = generation_](
                                                        const asio::error_code& ec, size_t n) {
      if (generation != generation_ || !client_) return;
      if (ec) {
        DropClient();
        return;
      }
      session_->Receive(std::span(buffer_.data(), n));
      if (!client_) return;  // dropped by Send (output backlog)
      MaybeFinish();
      if (!closing_) Read();
    });
  }

  void Send(std::string_view bytes) {
    if (!client_ || closing_) return;
    if (pending_.size() + bytes.size() > kMaxPendingOutput) {
      spdlog::warn("gdb: client is not reading ({} bytes waiting); dropping it", pending_.size());
      // Dropped after this call returns (Send runs inside the session).
      asio::post(io_, [this, generation = generation_] {
        if (generation == generation_ && client_) DropClient();
      });
      closing_ = true;
      return;
    }
    pending_.append(bytes);
    Flush();
  }

  void Flush() {
    if (writing_ || pending_.empty() || !client_) return;
    writing_ = true;
    in_flight_.swap(pending_);
    pending_.clear();
    asio::async_write(*client_, asio::buffer(in_flight_),
                      [this, generation = generation_](const asio::error_code& ec, size_t) {
                        if (generation != generation_ || !client_) return;
                        writing_ = false;
                        in_flight_.clear();
                        if (ec) {
                          DropClient();
                          return;
                        }
                        if (!pending_.empty()) {
                          Flush();
                        } else if (session_->finished()) {
                          DropClient();
                        }
                      });
  }

  // After `D`, `k` or the guest's exit: close once everything is written.
  void MaybeFinish() {
    if (!session_ || !session_->finished()) return;
    closing_ = true;
    if (!writing_ && pending_.empty()) DropClient();
  }

  void DropClient() {
    if (!client_) return;
    session_->OnDisconnect();
    const SessionCounters& c = session_->counters();
    spdlog::info(
        "gdb: client gone ({} packets, {} bad checksums, {} overlong, {} unsupported, {} errors)",
        c.packets, c.bad_checksums, c.overlong, c.unsupported, c.errors);
    asio::error_code ignored;
    client_->shutdown(asio::socket_base::shutdown_both, ignored);
    client_->close(ignored);
    client_.reset();
    session_.reset();
    ++generation_;  // handlers of the old client do nothing
  }

  GdbTarget& target_;
  asio::io_context io_;
  GdbEndpoint endpoint_;
  asio::ip::tcp::acceptor tcp_acceptor_;
  std::unique_ptr<base::UnixListener> unix_listener_;
  std::thread thread_;

  // The client (io thread only).
  std::optional<Socket> client_;
  std::unique_ptr<GdbSession> session_;
  std::array<uint8_t, 4096> buffer_{};
  std::string pending_, in_flight_;
  bool writing_ = false;
  bool closing_ = false;
  uint64_t generation_ = 0;
};

GdbServer::GdbServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GdbServer::~GdbServer() = default;

base::Result<std::unique_ptr<GdbServer>> GdbServer::Start(const GdbEndpoint& endpoint,
                                                          GdbTarget& target) {
  auto impl = std::make_unique<Impl>(target);
  TRY(impl->Bind(endpoint));
  impl->Run();
  spdlog::info("gdb: listening on {} (gdb -ex 'target remote {}')", impl->address(),
               impl->address());
  return std::unique_ptr<GdbServer>(new GdbServer(std::move(impl)));
}

std::string GdbServer::address() const { return impl_->address(); }
uint16_t GdbServer::port() const { return impl_->port(); }

}  // namespace vmm::gdb
