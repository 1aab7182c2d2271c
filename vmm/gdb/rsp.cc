#include "vmm/gdb/rsp.h"

namespace vmm::gdb {

namespace {

constexpr char kStart = '$';
constexpr char kEnd = '#';
constexpr char kEscape = '}';
constexpr char kRunLength = '*';
constexpr uint8_t kInterruptByte = 0x03;
constexpr uint8_t kEscapeXor = 0x20;

bool NeedsEscape(char c) { return c == kStart || c == kEnd || c == kEscape || c == kRunLength; }

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::optional<int> HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

void PacketReader::Feed(std::span<const uint8_t> bytes, std::vector<RspEvent>& out) {
  for (const uint8_t byte : bytes) {
    const char c = static_cast<char>(byte);
    switch (state_) {
      case State::kIdle:
        if (c == kStart) {
          state_ = State::kPayload;
          payload_.clear();
          overlong_ = false;
          sum_ = 0;
        } else if (c == '+') {
          out.push_back({RspEvent::Kind::kAck, {}});
        } else if (c == '-') {
          out.push_back({RspEvent::Kind::kNack, {}});
        } else if (byte == kInterruptByte) {
          out.push_back({RspEvent::Kind::kInterrupt, {}});
        } else {
          ++junk_;
        }
        break;
      case State::kPayload:
        if (c == kEnd) {
          state_ = State::kChecksum1;
        } else if (c == kStart) {
          // A new packet inside a packet: the client gave up on the first
          // (gdb resends after a timeout). Start again.
          junk_ += payload_.size() + 1;
          payload_.clear();
          overlong_ = false;
          sum_ = 0;
        } else {
          sum_ = static_cast<uint8_t>(sum_ + byte);
          if (payload_.size() < kMaxPacket) {
            payload_.push_back(c);
          } else {
            overlong_ = true;
          }
        }
        break;
      case State::kChecksum1: {
        const auto hi = HexDigit(c);
        checksum_hi_ = hi ? *hi : -1;
        state_ = State::kChecksum2;
        break;
      }
      case State::kChecksum2: {
        const auto lo = HexDigit(c);
        state_ = State::kIdle;
        if (overlong_) {
          out.push_back({RspEvent::Kind::kOverlong, {}});
        } else if (checksum_hi_ < 0 || !lo || ((checksum_hi_ << 4) | *lo) != sum_) {
          out.push_back({RspEvent::Kind::kBadChecksum, std::move(payload_)});
        } else {
          out.push_back({RspEvent::Kind::kPacket, std::move(payload_)});
        }
        payload_.clear();
        break;
      }
    }
  }
}

std::string Frame(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 4);
  out.push_back(kStart);
  uint8_t sum = 0;
  auto put = [&](char c) {
    out.push_back(c);
    sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
  };
  for (const char c : payload) {
    if (NeedsEscape(c)) {
      put(kEscape);
      put(static_cast<char>(static_cast<uint8_t>(c) ^ kEscapeXor));
    } else {
      put(c);
    }
  }
  out.push_back(kEnd);
  out.push_back(kHexDigits[sum >> 4]);
  out.push_back(kHexDigits[sum & 0xf]);
  return out;
}

std::string ToHex(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

std::string ToHex(std::string_view text) {
  return ToHex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::optional<std::vector<uint8_t>> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const auto hi = HexDigit(hex[i]);
    const auto lo = HexDigit(hex[i + 1]);
    if (!hi || !lo) return std::nullopt;
    out.push_back(static_cast<uint8_t>((*hi << 4) | *lo));
  }
  return out;
}

std::optional<uint64_t> ParseHexNumber(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  uint64_t value = 0;
  for (const char c : hex) {
    const auto d = HexDigit(c);
    if (!d) return std::nullopt;
    value = (value << 4) | static_cast<uint64_t>(*d);
  }
  return value;
}

std::optional<std::vector<uint8_t>> Unescape(std::string_view data) {
  std::vector<uint8_t> out;
  out.reserve(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == kEscape) {
      if (i + 1 == data.size()) return std::nullopt;
      out.push_back(static_cast<uint8_t>(static_cast<uint8_t>(data[++i]) ^ kEscapeXor));
    } else {
      out.push_back(static_cast<uint8_t>(data[i]));
    }
  }
  return out;
}

}  // namespace vmm::gdb
