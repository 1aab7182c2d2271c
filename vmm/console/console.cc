#include "vmm/console/console.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>

#include "base/fd_hygiene.h"
#include "base/io_shutdown_hooks.h"
#include "base/unix_socket.h"
#include "vmm/console/terminal.h"

namespace vmm {
namespace {

constexpr size_t kReadChunk = 4096;
// Bytes taken from stdin per io-thread turn, so other handlers get a go.
constexpr size_t kStdinBytesPerTurn = 64 * 1024;
// How often input flow control re-checks the guest's queue.
constexpr auto kFlowRetry = std::chrono::milliseconds(2);
// The socket backend's pending buffer, if the io thread falls behind.
constexpr size_t kMaxPending = 4 * 1024 * 1024;
constexpr size_t kMaxLine = 256;

}  // namespace

struct Console::Client {
  explicit Client(asio::io_context& io) : socket(io), retry(io) {}
  asio::local::stream_protocol::socket socket;
  asio::steady_timer retry;
  std::vector<uint8_t> queue;    // waiting to be written
  std::vector<uint8_t> writing;  // the buffer of the write in flight
  bool write_in_flight = false;
  bool closed = false;
  uint64_t next_seq = 0;  // sequence number of the next output byte this client needs
  std::array<uint8_t, kReadChunk> read_buf;
};

base::Result<SerialSpec> ParseSerialSpec(std::string_view text, std::string_view flag) {
  SerialSpec spec;
  if (text == "stdio") {
    spec.kind = SerialSpec::Kind::kStdio;
    return spec;
  }
  if (text == "none") {
    spec.kind = SerialSpec::Kind::kNone;
    return spec;
  }
  auto with_path = [&](std::string_view prefix, SerialSpec::Kind kind) -> bool {
    if (!text.starts_with(prefix)) return false;
    spec.kind = kind;
    spec.path = std::string(text.substr(prefix.size()));
    return true;
  };
  if (with_path("file:", SerialSpec::Kind::kFile) ||
      with_path("socket:", SerialSpec::Kind::kSocket)) {
    if (spec.path.empty()) {
      return base::MakeError(base::ErrorKind::kUsage, "{} {}: the path is empty", flag, text);
    }
    if (spec.path.find('\0') != std::string::npos) {
      return base::MakeError(base::ErrorKind::kUsage, "{} {}: the path holds a NUL character", flag,
                             text);
    }
    return spec;
  }
  return base::MakeError(base::ErrorKind::kUsage,
                         "{} {}: expected stdio, file:PATH, socket:PATH or none", flag, text);
}

std::string FormatSerialSpec(const SerialSpec& spec) {
  switch (spec.kind) {
    case SerialSpec::Kind::kStdio:
      return "stdio";
    case SerialSpec::Kind::kFile:
      return "file:" + spec.path;
    case SerialSpec::Kind::kSocket:
      return "socket:" + spec.path;
    case SerialSpec::Kind::kNone:
      break;
  }
  return "none";
}

Console::Console(asio::io_context& io, SerialSpec spec, ConsoleOptions options)
    : io_(io),
      spec_(std::move(spec)),
      options_(std::move(options)),
      ring_(options_.ring_bytes),
      stdin_retry_(std::make_unique<asio::steady_timer>(io)) {
  io_hooks_ = &base::IoShutdownHooks::Of(io);
  io_hook_token_ = io_hooks_->Add([this] {
    io_hooks_ = nullptr;
    {
      std::lock_guard lock(out_mu_);
      io_gone_ = true;
    }
    ReleaseIo();
  });
}

base::Result<std::unique_ptr<Console>> Console::Create(asio::io_context& io, const SerialSpec& spec,
                                                       ConsoleOptions options) {
  std::unique_ptr<Console> console(new Console(io, spec, std::move(options)));
  switch (spec.kind) {
    case SerialSpec::Kind::kNone:
      break;
    case SerialSpec::Kind::kFile: {
      int fd = open(spec.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        return base::MakeErrnoError(base::ErrorKind::kNoInput, "--serial file:{}: cannot open",
                                    spec.path);
      }
      console->out_fd_ = fd;
      console->owns_out_fd_ = true;
      break;
    }
    case SerialSpec::Kind::kStdio:
      console->out_fd_ = console->options_.stdout_fd;
      TRY(console->StartStdio());
      break;
    case SerialSpec::Kind::kSocket: {
      console->listener_ = TRY_CTX(base::UnixListener::Create(io, spec.path),
                                   fmt::format("--serial {}", FormatSerialSpec(spec)));
      asio::post(io, [c = console.get()] { c->Accept(); });
      break;
    }
  }
  return console;
}

Console::~Console() {
  RestoreTerminal();
  if (io_hooks_ != nullptr) io_hooks_->Remove(io_hook_token_);
  ReleaseIo();
  if (owns_out_fd_ && out_fd_ >= 0) close(out_fd_);
}

void Console::ReleaseIo() {
  asio::error_code ec;
  for (auto& client : clients_list_) {
    client->closed = true;
    client->socket.close(ec);
  }
  clients_list_.clear();
  listener_.reset();
  if (stdin_) {
    stdin_->close(ec);  // closes our dup only
    stdin_.reset();
  } else if (stdin_fd_ >= 0) {
    close(stdin_fd_);
  }
  stdin_fd_ = -1;
  stdin_eof_ = true;
  stdin_retry_.reset();
}

void Console::RestoreTerminal() {
  if (stdin_is_tty_) RestoreTerminalState();
}

ConsoleStats Console::stats() const {
  ConsoleStats s;
  {
    std::lock_guard lock(out_mu_);
    s.bytes_out = total_out_;
  }
  s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  s.bytes_dropped = bytes_dropped_.load(std::memory_order_relaxed);
  s.clients = clients_.load(std::memory_order_relaxed);
  s.clients_total = clients_total_.load(std::memory_order_relaxed);
  return s;
}

std::vector<uint8_t> Console::Backlog() const {
  std::lock_guard lock(out_mu_);
  return ring_.Contents();
}

std::string Console::LastLine() const {
  std::lock_guard lock(out_mu_);
  return current_line_.empty() ? last_line_ : current_line_;
}

// ---------------------------------------------------------------------------
// Output (vCPU threads)

void Console::Output(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  std::lock_guard lock(out_mu_);
  total_out_ += bytes.size();
  ring_.Append(bytes);
  TrackLine(bytes);
  switch (spec_.kind) {
    case SerialSpec::Kind::kNone:
      break;
    case SerialSpec::Kind::kStdio:
    case SerialSpec::Kind::kFile:
      WriteToFd(bytes);
      break;
    case SerialSpec::Kind::kSocket:
      AppendPending(bytes);
      if (!flush_posted_ && !io_gone_) {
        flush_posted_ = true;
        asio::post(io_, [this] { Flush(); });
      }
      break;
  }
}

// Keeps the newest kMaxPending bytes: only the part of `bytes` that can
// survive is copied (a 2 GiB transmit costs 4 MiB, not 2 GiB).
void Console::AppendPending(std::span<const uint8_t> bytes) {
  const size_t keep = std::min(bytes.size(), kMaxPending);
  const size_t skipped = bytes.size() - keep;
  const size_t room = kMaxPending - std::min(pending_.size(), kMaxPending);
  if (keep > room) {
    const size_t excess = std::min(keep - room, pending_.size());
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(excess));
    bytes_dropped_.fetch_add(excess, std::memory_order_relaxed);
  }
  const auto tail = bytes.subspan(skipped);
  pending_.insert(pending_.end(), tail.begin(), tail.end());
  bytes_dropped_.fetch_add(skipped, std::memory_order_relaxed);
}

namespace {

// Appends `bytes` without carriage returns to `line`, up to kMaxLine; stops
// looking once the line is full.
void AppendCapped(std::string* line, std::span<const uint8_t> bytes) {
  for (size_t i = 0; i < bytes.size() && line->size() < kMaxLine; ++i) {
    if (bytes[i] != '\r') line->push_back(static_cast<char>(bytes[i]));
  }
}

}  // namespace

// Only the last complete line and the start of the current one matter, so
// everything before the second-to-last newline is skipped (memchr speed, no
// per-byte work over a huge transmit).
void Console::TrackLine(std::span<const uint8_t> bytes) {
  const auto last_nl = std::find(bytes.rbegin(), bytes.rend(), uint8_t{'\n'});
  if (last_nl == bytes.rend()) {
    AppendCapped(&current_line_, bytes);
    return;
  }
  const size_t end = static_cast<size_t>(bytes.rend() - last_nl) - 1;  // index of the '\n'
  const auto before = bytes.first(end);
  const auto prev_nl = std::find(before.rbegin(), before.rend(), uint8_t{'\n'});
  if (prev_nl == before.rend()) {
    AppendCapped(&current_line_, before);
    last_line_ = std::move(current_line_);
  } else {
    const size_t start = static_cast<size_t>(before.rend() - prev_nl);
    last_line_.clear();
    AppendCapped(&last_line_, before.subspan(start));
  }
  current_line_.clear();
  AppendCapped(&current_line_, bytes.subspan(end + 1));
}

void Console::WriteToFd(std::span<const uint8_t> bytes) {
  if (out_broken_ || out_fd_ < 0) {
    bytes_dropped_.fetch_add(bytes.size(), std::memory_order_relaxed);
    return;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(out_fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{out_fd_, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
      bytes_dropped_.fetch_add(bytes.size() - done, std::memory_order_relaxed);
      return;
    }
    // EPIPE, EIO, ENOSPC...: stop writing but keep the guest running.
    out_broken_ = true;
    spdlog::warn("serial output ({}): write failed: {}; further output is dropped",
                 FormatSerialSpec(spec_), n < 0 ? std::strerror(errno) : "short write");
    bytes_dropped_.fetch_add(bytes.size() - done, std::memory_order_relaxed);
    return;
  }
}

// ---------------------------------------------------------------------------
// Input: shared

bool Console::InputBlocked() const {
  return options_.guest_input_pending &&
         options_.guest_input_pending() >= options_.max_guest_input_pending;
}

void Console::DeliverToGuest(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  bytes_in_.fetch_add(bytes.size(), std::memory_order_relaxed);
  if (options_.to_guest) options_.to_guest(bytes);
}

// ---------------------------------------------------------------------------
// stdio input (io thread)
//
// stdin is shared with the parent shell, so its file status flags must not
// change: asio's async reads would set O_NONBLOCK on the shared open file
// description. Instead the console waits for readability (async_wait leaves
// the flags alone) and reads exactly what FIONREAD says is there, which
// never blocks. stdin that epoll cannot watch (a regular file, /dev/null)
// never blocks either and is read in chunks.

base::Result<void> Console::StartStdio() {
  int in = options_.stdin_fd;
  stdin_is_tty_ = isatty(in) == 1;
  if (stdin_is_tty_) {
    // Started in the background (`vmm ... &`): changing the terminal's mode
    // or reading it would stop vmm with SIGTTOU/SIGTTIN. Leave the terminal
    // alone; output still goes to stdout.
    pid_t foreground = tcgetpgrp(in);
    if (foreground >= 0 && foreground != getpgrp()) {
      spdlog::info("serial: vmm runs in the background; the terminal's input is not read");
      stdin_is_tty_ = false;
      stdin_eof_ = true;
      return {};
    }
  }
  if (stdin_is_tty_ && options_.raw_mode) {
    InstallTerminalRestoreHandlers();
    TRY_CTX(EnterRawMode(in), "--serial stdio");
  } else {
    stdin_is_tty_ = false;  // no raw mode: no escape keys either
  }
  stdin_fd_ = fcntl(in, F_DUPFD_CLOEXEC, 3);
  if (stdin_fd_ < 0) {
    // A closed stdin: nothing to read.
    stdin_eof_ = true;
    return {};
  }
  stdin_ = std::make_unique<asio::posix::stream_descriptor>(io_);
  asio::error_code ec;
  stdin_->assign(stdin_fd_, ec);
  if (ec) {
    stdin_.reset();
    asio::post(io_, [this] { ReadStdinSync(); });
  } else {
    asio::post(io_, [this] { DrainStdin(); });
  }
  return {};
}

void Console::WaitStdin() {
  if (!stdin_ || stdin_eof_) return;
  stdin_->async_wait(asio::posix::stream_descriptor::wait_read, [this](const asio::error_code& ec) {
    if (ec) return;  // cancelled: the console is going away
    DrainStdin();
  });
}

void Console::DrainStdin() {
  size_t taken = 0;
  std::array<uint8_t, kReadChunk> buf;
  while (!stdin_eof_) {
    if (InputBlocked()) {
      stdin_retry_->expires_after(kFlowRetry);
      stdin_retry_->async_wait([this](const asio::error_code& ec) {
        if (!ec) DrainStdin();
      });
      return;
    }
    if (taken >= kStdinBytesPerTurn) {
      asio::post(io_, [this] { DrainStdin(); });
      return;
    }
    pollfd p{stdin_fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;  // nothing there: wait for the next edge
    int available = 0;
    if (ioctl(stdin_fd_, FIONREAD, &available) != 0) available = 0;
    // Readable with nothing buffered means end of file or hangup: read()
    // returns 0 (or an error) at once.
    size_t want =
        available > 0 ? std::min<size_t>(static_cast<size_t>(available), buf.size()) : buf.size();
    ssize_t n = read(stdin_fd_, buf.data(), want);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      spdlog::debug("serial stdin: end of input");
      stdin_eof_ = true;
      return;
    }
    taken += static_cast<size_t>(n);
    HandleTerminalInput({buf.data(), static_cast<size_t>(n)});
  }
  WaitStdin();
}

void Console::ReadStdinSync() {
  std::array<uint8_t, kReadChunk> buf;
  for (size_t taken = 0; taken < kStdinBytesPerTurn;) {
    if (InputBlocked()) {
      stdin_retry_->expires_after(kFlowRetry);
      stdin_retry_->async_wait([this](const asio::error_code& ec) {
        if (!ec) ReadStdinSync();
      });
      return;
    }
    ssize_t n = read(stdin_fd_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      stdin_eof_ = true;
      return;
    }
    taken += static_cast<size_t>(n);
    DeliverToGuest({buf.data(), static_cast<size_t>(n)});
  }
  asio::post(io_, [this] { ReadStdinSync(); });
}

void Console::HandleTerminalInput(std::span<const uint8_t> bytes) {
  if (!stdin_is_tty_) {
    DeliverToGuest(bytes);
    return;
  }
  std::vector<uint8_t> run;
  run.reserve(bytes.size());
  for (uint8_t b : bytes) {
    switch (escape_.Feed(b)) {
      case EscapeFilter::Action::kForward:
        run.push_back(b);
        break;
      case EscapeFilter::Action::kSwallow:
        break;
      case EscapeFilter::Action::kHelp: {
        DeliverToGuest(run);
        run.clear();
        std::string_view help = EscapeHelpText(/*attach=*/false);
        ssize_t ignored = write(options_.stderr_fd, help.data(), help.size());
        (void)ignored;
        break;
      }
      case EscapeFilter::Action::kQuit:
        DeliverToGuest(run);
        run.clear();
        if (options_.on_quit) options_.on_quit();
        break;
    }
  }
  DeliverToGuest(run);
}

// ---------------------------------------------------------------------------
// socket backend (io thread)

void Console::Accept() {
  if (!listener_) return;
  auto client = std::make_shared<Client>(io_);
  listener_->acceptor().async_accept(client->socket, [this, client](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted || !listener_) return;
    if (ec) {
      spdlog::warn("serial socket {}: accept failed: {}", spec_.path, ec.message());
      // EMFILE and friends: back off instead of spinning.
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      timer->async_wait([this, timer](const asio::error_code& e) {
        if (!e) Accept();
      });
      return;
    }
    StartClient(client);
    Accept();
  });
}

void Console::StartClient(std::shared_ptr<Client> client) {
  base::SetCloseOnExec(client->socket.native_handle());
  while (!clients_list_.empty() && clients_list_.size() >= options_.max_clients) {
    // The oldest client goes: a table full of idle clients must not keep the
    // operator's `vmm attach` out (docs/console.md).
    spdlog::warn("serial socket {}: {} clients connected (the limit); disconnecting the oldest",
                 spec_.path, clients_list_.size());
    DropClient(std::shared_ptr<Client>(clients_list_.front()));
  }
  {
    std::lock_guard lock(out_mu_);
    client->queue = ring_.Contents();
    client->next_seq = total_out_;
  }
  clients_list_.push_back(client);
  clients_.fetch_add(1, std::memory_order_relaxed);
  clients_total_.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("serial socket {}: client connected ({} now)", spec_.path, clients_list_.size());
  WriteClient(client);
  ReadClient(client);
}

void Console::ReadClient(std::shared_ptr<Client> client) {
  if (client->closed) return;
  if (InputBlocked()) {
    client->retry.expires_after(kFlowRetry);
    client->retry.async_wait([this, client](const asio::error_code& ec) {
      if (!ec) ReadClient(client);
    });
    return;
  }
  client->socket.async_read_some(asio::buffer(client->read_buf),
                                 [this, client](const asio::error_code& ec, size_t n) {
                                   if (client->closed) return;
                                   if (ec) {
                                     // EOF: the client closed (or half-closed) its side. Keep
                                     // sending output until a write fails, as socat expects after
                                     // its stdin ends.
                                     if (ec != asio::error::eof) DropClient(client);
                                     return;
                                   }
                                   DeliverToGuest({client->read_buf.data(), n});
                                   ReadClient(client);
                                 });
}

void Console::WriteClient(std::shared_ptr<Client> client) {
  if (client->closed || client->write_in_flight || client->queue.empty()) return;
  client->writing.swap(client->queue);
  client->queue.clear();
  client->write_in_flight = true;
  asio::async_write(client->socket, asio::buffer(client->writing),
                    [this, client](const asio::error_code& ec, size_t) {
                      client->write_in_flight = false;
                      client->writing.clear();
                      if (client->closed) return;
                      if (ec) {
                        DropClient(client);
                        return;
                      }
                      WriteClient(client);
                    });
}

void Console::DropClient(const std::shared_ptr<Client>& client) {
  if (client->closed) return;
  client->closed = true;
  asio::error_code ec;
  client->socket.close(ec);
  client->retry.cancel();
  clients_list_.remove(client);
  clients_.fetch_sub(1, std::memory_order_relaxed);
  spdlog::debug("serial socket {}: client gone ({} left)", spec_.path, clients_list_.size());
}

void Console::Flush() {
  std::vector<uint8_t> batch;
  uint64_t batch_start;
  {
    std::lock_guard lock(out_mu_);
    batch.swap(pending_);
    flush_posted_ = false;
    batch_start = total_out_ - batch.size();
  }
  const uint64_t batch_end = batch_start + batch.size();
  std::vector<std::shared_ptr<Client>> too_slow;
  for (auto& client : clients_list_) {
    if (client->next_seq >= batch_end) continue;  // already had these in its backlog
    size_t skip = client->next_seq > batch_start ? client->next_seq - batch_start : 0;
    client->queue.insert(client->queue.end(), batch.begin() + static_cast<ptrdiff_t>(skip),
                         batch.end());
    client->next_seq = batch_end;
    if (client->queue.size() > options_.max_client_queue) {
      too_slow.push_back(client);
      continue;
    }
    WriteClient(client);
  }
  for (auto& client : too_slow) {
    spdlog::warn("serial socket {}: a client fell {} bytes behind; disconnecting it", spec_.path,
                 client->queue.size());
    bytes_dropped_.fetch_add(client->queue.size(), std::memory_order_relaxed);
    DropClient(client);
  }
}

}  // namespace vmm
