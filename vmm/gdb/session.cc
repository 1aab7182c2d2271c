#include "vmm/gdb/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

#include "vmm/gdb/registers.h"

namespace vmm::gdb {

namespace {

// Signal numbers in stop replies (gdb's own numbering, which matches Linux
// for these two).
constexpr int kSigInt = 2;
constexpr int kSigTrap = 5;
// A `-` is answered by resending the last packet this many times in a row,
// then no more (a client that nacks everything must not spin the server).
constexpr int kMaxResends = 3;
// The most one `m` reads: its hex reply must fit in kMaxPacket.
constexpr uint64_t kMaxMemoryRead = kMaxPacket / 2;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "ADDR,LEN" with both in hex.
std::optional<std::pair<uint64_t, uint64_t>> ParseAddressLength(std::string_view s) {
  const size_t comma = s.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  auto address = ParseHexNumber(s.substr(0, comma));
  auto length = ParseHexNumber(s.substr(comma + 1));
  if (!address || !length) return std::nullopt;
  return std::pair{*address, *length};
}

std::string Hex2(uint64_t value) { return fmt::format("{:02x}", value & 0xff); }

}  // namespace

GdbSession::GdbSession(GdbTarget& target, std::function<void(std::string_view)> send)
    : target_(target), send_(std::move(send)) {}

base::Result<void> GdbSession::Attach() {
  last_stop_ = TRY(target_.Halt());
  g_thread_ = last_stop_.cpu;
  return {};
}

void GdbSession::Receive(std::span<const uint8_t> bytes) {
  std::vector<RspEvent> events;
  reader_.Feed(bytes, events);
  for (RspEvent& event : events) {
    if (finished_) return;
    switch (event.kind) {
      case RspEvent::Kind::kPacket:
        resends_ = 0;
        if (ack_mode_) send_("+");
        ++counters_.packets;
        HandlePacket(event.payload);
        break;
      case RspEvent::Kind::kBadChecksum:
        ++counters_.bad_checksums;
        spdlog::debug("gdb: packet with a bad checksum dropped ({} bytes)", event.payload.size());
        if (ack_mode_) send_("-");
        break;
      case RspEvent::Kind::kOverlong:
        ++counters_.overlong;
        spdlog::warn("gdb: packet longer than {} bytes dropped", kMaxPacket);
        if (ack_mode_) {
          send_("-");
        } else {
          SendPacket(Error(EINVAL));
        }
        break;
      case RspEvent::Kind::kInterrupt:
        ++counters_.interrupts;
        if (running_) target_.Interrupt();
        break;
      case RspEvent::Kind::kAck:
        resends_ = 0;
        break;
      case RspEvent::Kind::kNack:
        if (ack_mode_ && !last_packet_.empty() && resends_ < kMaxResends) {
          ++resends_;
          send_(last_packet_);
        }
        break;
    }
  }
}

void GdbSession::SendPacket(std::string_view payload) {
  last_packet_ = Frame(payload);
  send_(last_packet_);
}

void GdbSession::HandlePacket(std::string_view packet) {
  spdlog::trace("gdb: <- {}", packet.substr(0, 80));
  if (running_) {
    // All-stop: while the guest runs only 0x03 is expected.
    SendPacket(Error(EBUSY));
    return;
  }
  if (exited_) {
    SendPacket(Error(ESRCH));
    return;
  }
  if (auto reply = Dispatch(packet)) SendPacket(*reply);
}

std::string GdbSession::Error(int code) {
  ++counters_.errors;
  return "E" + Hex2(static_cast<uint64_t>(code));
}

std::optional<std::string> GdbSession::Dispatch(std::string_view packet) {
  if (packet.empty()) return std::string();
  const char command = packet[0];
  const std::string_view args = packet.substr(1);
  switch (command) {
    case '?':
      return StopReply(last_stop_);
    case 'g':
      return ReadRegisters();
    case 'G':
      return WriteRegisters(args);
    case 'p':
      return ReadRegister(args);
    case 'P':
      return WriteRegister(args);
    case 'm':
      return ReadMemory(args);
    case 'M':
      return WriteMemory(args, /*binary=*/false);
    case 'X':
      return WriteMemory(args, /*binary=*/true);
    case 'Z':
      return Breakpoint(args, /*insert=*/true);
    case 'z':
      return Breakpoint(args, /*insert=*/false);
    case 'H':
      return SetThread(args);
    case 'T':
      return ThreadAlive(args);
    case 'c':
      return Continue(args, /*step=*/false);
    case 's':
      return Continue(args, /*step=*/true);
    case 'C':
    case 'S': {
      // C sig[;addr]: the signal means nothing to a VM; resume as c/s.
      const size_t semi = args.find(';');
      return Continue(semi == std::string_view::npos ? std::string_view() : args.substr(semi + 1),
                      command == 'S');
    }
    case 'D':
      return Detach();
    case 'k':
      finished_ = true;
      spdlog::info("gdb: kill requested: ending the VM");
      target_.Kill();
      return std::nullopt;
    case 'q':
    case 'Q':
      return Query(packet);
    case 'v':
      if (packet == "vCont?") return std::string("vCont;c;C;s;S;t");
      if (StartsWith(packet, "vCont;")) return VCont(packet.substr(6));
      if (StartsWith(packet, "vKill")) {
        finished_ = true;
        spdlog::info("gdb: kill requested: ending the VM");
        target_.Kill();
        return std::string("OK");
      }
      if (packet == "vCtrlC") {
        target_.Interrupt();
        return std::string("OK");
      }
      break;
    default:
      break;
  }
  ++counters_.unsupported;
  spdlog::debug("gdb: unsupported packet '{}'", packet.substr(0, 40));
  return std::string();  // the empty reply: not supported
}

std::string GdbSession::StopReply(const StopEvent& event) const {
  if (event.reason == StopEvent::Reason::kExited) {
    return "W" + Hex2(static_cast<uint64_t>(event.exit_status));
  }
  const int signal = event.reason == StopEvent::Reason::kInterrupt ? kSigInt : kSigTrap;
  std::string reply = "T" + Hex2(static_cast<uint64_t>(signal));
  if (event.reason == StopEvent::Reason::kWatchpoint) {
    const char* name = event.kind == BreakKind::kReadWatch     ? "rwatch"
                       : event.kind == BreakKind::kAccessWatch ? "awatch"
                                                               : "watch";
    reply += fmt::format("{}:{:x};", name, event.address);
  } else if (event.reason == StopEvent::Reason::kBreakpoint) {
    if (event.kind == BreakKind::kHardware && hwbreak_feature_) {
      reply += "hwbreak:;";
    } else if (event.kind == BreakKind::kSoftware && swbreak_feature_) {
      reply += "swbreak:;";
    }
  }
  reply += fmt::format("thread:{:x};", event.cpu + 1);
  return reply;
}

std::string GdbSession::Query(std::string_view packet) {
  if (StartsWith(packet, "qSupported")) {
    return Supported(packet.size() > 11 ? packet.substr(11) : std::string_view());
  }
  if (packet == "QStartNoAckMode") {
    ack_mode_ = false;  // this reply is still acknowledged by the client
    return "OK";
  }
  if (StartsWith(packet, "qXfer:features:read:")) return ReadFeatures(packet.substr(20));
  if (packet == "qAttached" || StartsWith(packet, "qAttached:")) return "1";
  if (packet == "qC") return fmt::format("QC{:x}", g_thread_ + 1);
  if (packet == "qfThreadInfo") {
    std::string reply = "m";
    for (uint32_t cpu = 0; cpu < target_.cpu_count(); ++cpu) {
      reply += fmt::format("{}{:x}", cpu == 0 ? "" : ",", cpu + 1);
    }
    return reply;
  }
  if (packet == "qsThreadInfo") return "l";
  if (StartsWith(packet, "qThreadExtraInfo,")) {
    auto id = ParseThreadId(packet.substr(17));
    if (!id || *id < 0) return Error(EINVAL);
    return ToHex(fmt::format("vCPU {}", *id));
  }
  if (StartsWith(packet, "qRcmd,")) return MonitorCommand(packet.substr(6));
  if (StartsWith(packet, "qSymbol")) return "OK";
  ++counters_.unsupported;
  spdlog::debug("gdb: unsupported query '{}'", packet.substr(0, 40));
  return std::string();
}

std::string GdbSession::Supported(std::string_view features) {
  // The client's features: "name+" / "name-" / "name=value", ';'-separated.
  size_t pos = 0;
  while (pos <= features.size()) {
    size_t end = features.find(';', pos);
    if (end == std::string_view::npos) end = features.size();
    const std::string_view feature = features.substr(pos, end - pos);
    if (feature == "swbreak+") swbreak_feature_ = true;
    if (feature == "hwbreak+") hwbreak_feature_ = true;
    pos = end + 1;
  }
  return fmt::format(
      "PacketSize={:x};qXfer:features:read+;vContSupported+;swbreak+;hwbreak+;QStartNoAckMode+",
      kMaxPacket);
}

std::string GdbSession::ReadFeatures(std::string_view annex_and_range) {
  // ANNEX:OFFSET,LENGTH
  const size_t colon = annex_and_range.find(':');
  if (colon == std::string_view::npos) return Error(EINVAL);
  const std::string_view annex = annex_and_range.substr(0, colon);
  auto range = ParseAddressLength(annex_and_range.substr(colon + 1));
  if (!range) return Error(EINVAL);
  if (annex != "target.xml") return Error(ENOENT);
  const std::string_view xml = TargetXml();
  const auto [offset, length] = *range;
  if (offset >= xml.size()) return "l";
  // Frame() escapes the data; leave room for escapes (none in the XML).
  const size_t n = static_cast<size_t>(
      std::min<uint64_t>({length, static_cast<uint64_t>(xml.size() - offset), kMaxPacket - 16}));
  const bool last = offset + n >= xml.size();
  return (last ? "l" : "m") + std::string(xml.substr(static_cast<size_t>(offset), n));
}

std::string GdbSession::MonitorCommand(std::string_view hex_command) {
  auto bytes = FromHex(hex_command);
  if (!bytes) return Error(EINVAL);
  const std::string command(bytes->begin(), bytes->end());
  std::string output;
  auto result = target_.Monitor(command);
  if (result) {
    output = std::move(*result);
  } else {
    output = "error: " + result.error().ToString() + "\n";
  }
  // The text goes out in `O` packets (hex), then the final OK.
  constexpr size_t kChunk = (kMaxPacket - 2) / 2;
  for (size_t pos = 0; pos < output.size(); pos += kChunk) {
    SendPacket("O" + ToHex(std::string_view(output).substr(pos, kChunk)));
  }
  return "OK";
}

uint32_t GdbSession::RegisterCpu() const { return static_cast<uint32_t>(g_thread_); }

std::string GdbSession::ReadRegisters() {
  auto regs = target_.ReadRegisters(RegisterCpu());
  if (!regs) {
    spdlog::warn("gdb: reading the registers of vCPU {}: {}", RegisterCpu(),
                 regs.error().ToString());
    return Error(EIO);
  }
  return EncodeRegisters(*regs);
}

std::string GdbSession::WriteRegisters(std::string_view hex) {
  auto regs = target_.ReadRegisters(RegisterCpu());
  if (!regs) return Error(EIO);
  if (!DecodeRegisters(hex, *regs)) return Error(EINVAL);
  if (auto r = target_.WriteRegisters(RegisterCpu(), *regs); !r) {
    spdlog::warn("gdb: writing the registers of vCPU {}: {}", RegisterCpu(), r.error().ToString());
    return Error(EIO);
  }
  return "OK";
}

std::string GdbSession::ReadRegister(std::string_view args) {
  auto n = ParseHexNumber(args);
  if (!n || *n >= kRegisterCount) return Error(EINVAL);
  auto regs = target_.ReadRegisters(RegisterCpu());
  if (!regs) return Error(EIO);
  return *EncodeRegister(*regs, static_cast<size_t>(*n));
}

std::string GdbSession::WriteRegister(std::string_view args) {
  const size_t eq = args.find('=');
  if (eq == std::string_view::npos) return Error(EINVAL);
  auto n = ParseHexNumber(args.substr(0, eq));
  if (!n || *n >= kRegisterCount) return Error(EINVAL);
  auto regs = target_.ReadRegisters(RegisterCpu());
  if (!regs) return Error(EIO);
  if (!DecodeRegister(*regs, static_cast<size_t>(*n), args.substr(eq + 1))) return Error(EINVAL);
  if (!target_.WriteRegisters(RegisterCpu(), *regs)) return Error(EIO);
  return "OK";
}

std::string GdbSession::ReadMemory(std::string_view args) {
  auto range = ParseAddressLength(args);
  if (!range) return Error(EINVAL);
  const auto [address, length] = *range;
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min(length, kMaxMemoryRead)));
  if (buffer.empty()) return std::string();
  auto n = target_.ReadMemory(RegisterCpu(), address, buffer);
  if (!n) {
    spdlog::warn("gdb: reading {:#x}: {}", address, n.error().ToString());
    return Error(EIO);
  }
  if (*n == 0) return Error(EFAULT);  // E0e, gdb: "Cannot access memory at address"
  return ToHex(std::span<const uint8_t>(buffer.data(), *n));
}

std::string GdbSession::WriteMemory(std::string_view args, bool binary) {
  const size_t colon = args.find(':');
  if (colon == std::string_view::npos) return Error(EINVAL);
  auto range = ParseAddressLength(args.substr(0, colon));
  if (!range) return Error(EINVAL);
  const auto [address, length] = *range;
  const std::string_view data = args.substr(colon + 1);
  auto bytes = binary ? Unescape(data) : FromHex(data);
  if (!bytes || bytes->size() != length) return Error(EINVAL);
  if (bytes->empty()) return "OK";  // gdb probes X support with a 0-byte write
  auto n = target_.WriteMemory(RegisterCpu(), address, *bytes);
  if (!n) {
    spdlog::warn("gdb: writing {:#x}: {}", address, n.error().ToString());
    return Error(EIO);
  }
  if (*n != bytes->size()) return Error(EFAULT);
  return "OK";
}

std::string GdbSession::Breakpoint(std::string_view args, bool insert) {
  // TYPE,ADDR,KIND (conditions after ';' are not supported: gdb then
  // evaluates them itself).
  const size_t comma = args.find(',');
  if (comma == std::string_view::npos || comma != 1) return Error(EINVAL);
  const char type = args[0];
  if (type < '0' || type > '4') {
    ++counters_.unsupported;
    return std::string();
  }
  std::string_view rest = args.substr(2);
  rest = rest.substr(0, rest.find(';'));
  auto range = ParseAddressLength(rest);
  if (!range) return Error(EINVAL);
  const auto kind = static_cast<BreakKind>(type - '0');
  const auto [address, length] = *range;
  auto result = insert ? target_.InsertBreakpoint(kind, address, length)
                       : target_.RemoveBreakpoint(kind, address, length);
  if (!result) {
    spdlog::warn("gdb: {} {} at {:#x}: {}", insert ? "inserting" : "removing",
                 type <= '1' ? "breakpoint" : "watchpoint", address, result.error().ToString());
    return Error(ENOSPC);
  }
  return "OK";
}

std::optional<int64_t> GdbSession::ParseThreadId(std::string_view text) const {
  if (text == "-1") return -1;
  auto id = ParseHexNumber(text);
  if (!id) return std::nullopt;
  if (*id == 0) return 0;  // "any thread": the first vCPU
  if (*id > target_.cpu_count()) return std::nullopt;
  return static_cast<int64_t>(*id - 1);
}

std::string GdbSession::SetThread(std::string_view args) {
  if (args.empty()) return Error(EINVAL);
  auto id = ParseThreadId(args.substr(1));
  if (!id) return Error(ESRCH);
  if (args[0] == 'g') {
    if (*id < 0) return Error(EINVAL);  // registers of "all threads" mean nothing
    g_thread_ = *id;
    return "OK";
  }
  if (args[0] == 'c') {
    c_thread_ = *id;
    return "OK";
  }
  return Error(EINVAL);
}

std::string GdbSession::ThreadAlive(std::string_view args) {
  auto id = ParseThreadId(args);
  if (!id || *id < 0) return Error(ESRCH);
  return "OK";
}

std::optional<std::string> GdbSession::Continue(std::string_view args, bool step) {
  const uint32_t cpu = c_thread_ >= 0 ? static_cast<uint32_t>(c_thread_) : RegisterCpu();
  if (!args.empty()) {
    // `c ADDR`: resume at ADDR.
    auto address = ParseHexNumber(args);
    if (!address) return Error(EINVAL);
    auto regs = target_.ReadRegisters(cpu);
    if (!regs) return Error(EIO);
    regs->rip = *address;
    if (!target_.WriteRegisters(cpu, *regs)) return Error(EIO);
  }
  // `c` runs every vCPU; `s` steps the selected one and leaves the others
  // stopped (gdb uses vCont to say otherwise).
  std::vector<ResumeMode> modes(target_.cpu_count(),
                                step ? ResumeMode::kStop : ResumeMode::kContinue);
  if (step) modes[cpu] = ResumeMode::kStep;
  return ResumeWith(modes);
}

std::optional<std::string> GdbSession::VCont(std::string_view actions) {
  // ACTION[:TID](;ACTION[:TID])*: the first action naming a thread (or
  // none, meaning all) applies to it.
  std::vector<std::optional<ResumeMode>> chosen(target_.cpu_count());
  size_t pos = 0;
  while (pos <= actions.size()) {
    size_t end = actions.find(';', pos);
    if (end == std::string_view::npos) end = actions.size();
    std::string_view action = actions.substr(pos, end - pos);
    pos = end + 1;
    if (action.empty()) return Error(EINVAL);
    std::optional<int64_t> thread = -1;
    const size_t colon = action.find(':');
    if (colon != std::string_view::npos) {
      thread = ParseThreadId(action.substr(colon + 1));
      action = action.substr(0, colon);
      if (!thread) return Error(ESRCH);
    }
    ResumeMode mode;
    if (action == "c" || (action.size() == 3 && action[0] == 'C')) {
      mode = ResumeMode::kContinue;
    } else if (action == "s" || (action.size() == 3 && action[0] == 'S')) {
      mode = ResumeMode::kStep;
    } else if (action == "t") {
      mode = ResumeMode::kStop;
    } else {
      return Error(EINVAL);
    }
    for (uint32_t cpu = 0; cpu < chosen.size(); ++cpu) {
      if ((*thread < 0 || *thread == cpu) && !chosen[cpu]) chosen[cpu] = mode;
    }
  }
  std::vector<ResumeMode> modes;
  modes.reserve(chosen.size());
  for (const auto& mode : chosen) modes.push_back(mode.value_or(ResumeMode::kStop));
  return ResumeWith(modes);
}

std::optional<std::string> GdbSession::ResumeWith(const std::vector<ResumeMode>& modes) {
  if (std::all_of(modes.begin(), modes.end(),
                  [](ResumeMode m) { return m == ResumeMode::kStop; })) {
    return Error(EINVAL);  // nothing would run: no stop would ever come
  }
  running_ = true;
  if (auto result = target_.Resume(modes); !result) {
    running_ = false;
    spdlog::warn("gdb: resuming the guest: {}", result.error().ToString());
    return Error(EIO);
  }
  return std::nullopt;  // the stop reply comes from OnStop
}

std::string GdbSession::Detach() {
  target_.RemoveAllBreakpoints();
  std::vector<ResumeMode> modes(target_.cpu_count(), ResumeMode::kContinue);
  if (auto result = target_.Resume(modes); !result) {
    spdlog::warn("gdb: resuming the guest on detach: {}", result.error().ToString());
  }
  finished_ = true;
  spdlog::info("gdb: detached; the guest runs on");
  return "OK";
}

void GdbSession::OnStop(const StopEvent& event) {
  if (event.reason == StopEvent::Reason::kExited) {
    exited_ = true;
    finished_ = true;
    // A stopped gdb is not waiting for a reply: only a running one is told.
    if (running_) {
      running_ = false;
      SendPacket(StopReply(event));
    }
    return;
  }
  last_stop_ = event;
  if (!running_) return;  // e.g. a late interrupt after a breakpoint
  running_ = false;
  g_thread_ = event.cpu;  // gdb switches to the thread that stopped
  SendPacket(StopReply(event));
}

void GdbSession::OnDisconnect() {
  if (finished_) return;
  finished_ = true;
  target_.RemoveAllBreakpoints();
  if (!running_) {
    std::vector<ResumeMode> modes(target_.cpu_count(), ResumeMode::kContinue);
    if (auto result = target_.Resume(modes); !result) {
      spdlog::warn("gdb: resuming the guest after the client left: {}", result.error().ToString());
    }
  }
  spdlog::info("gdb: client disconnected; breakpoints removed, the guest runs on");
}

}  // namespace vmm::gdb
