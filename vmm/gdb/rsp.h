// The framing layer of the GDB remote serial protocol (docs/gdb.md,
// "Protocol"): `$payload#cs` packets with a two-hex-digit modulo-256
// checksum, `+`/`-` acknowledgements, and the out-of-band interrupt byte
// 0x03. Pure code, no sockets: the server (vmm/gdb/server.h) feeds it the
// bytes a client sent and writes what Frame() returns.
//
// A client is untrusted. PacketReader never grows past kMaxPacket bytes of
// payload: a longer packet is dropped whole and reported as kOverlong; bytes
// outside a packet (other than `+`, `-` and 0x03) are counted and skipped;
// a checksum that does not match, or is not hex, is kBadChecksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmm::gdb {

// The largest payload vmm accepts and the PacketSize it advertises (hex in
// qSupported): room for a `G` packet with every register and a 8 KiB `M`.
inline constexpr size_t kMaxPacket = 0x4000;

struct RspEvent {
  enum class Kind {
    kPacket,       // a complete packet with a good checksum: `payload`
    kBadChecksum,  // a complete packet whose checksum failed: `payload` as received
    kOverlong,     // a packet longer than kMaxPacket, dropped
    kInterrupt,    // 0x03 outside a packet (Ctrl-C)
    kAck,          // `+`
    kNack,         // `-`
  };
  Kind kind;
  std::string payload;
};

class PacketReader {
 public:
  // Appends the events found in `bytes` to `out`.
  void Feed(std::span<const uint8_t> bytes, std::vector<RspEvent>& out);

  // Bytes skipped outside packets since construction.
  uint64_t junk_bytes() const { return junk_; }
  // True while a packet has been started but not finished.
  bool in_packet() const { return state_ != State::kIdle; }

 private:
  enum class State { kIdle, kPayload, kChecksum1, kChecksum2 };
  State state_ = State::kIdle;
  std::string payload_;
  bool overlong_ = false;
  uint8_t sum_ = 0;
  int checksum_hi_ = 0;
  uint64_t junk_ = 0;
};

// `$payload#cs`, with `$`, `#`, `}` and `*` in the payload escaped
// (`}` then the byte XOR 0x20), so any bytes may be sent: binary replies
// (qXfer) go in raw, and gdb never sees a `*` it would take for run-length
// encoding. Text replies (hex, stop replies) contain none of the four.
std::string Frame(std::string_view payload);

// The value of one hex digit, or nullopt.
std::optional<int> HexDigit(char c);
// Lower-case hex of `bytes`.
std::string ToHex(std::span<const uint8_t> bytes);
std::string ToHex(std::string_view text);
// Bytes from an even-length hex string; nullopt on any non-hex digit or an
// odd length.
std::optional<std::vector<uint8_t>> FromHex(std::string_view hex);
// A hex number of 1..16 digits (no prefix, no sign); nullopt otherwise.
std::optional<uint64_t> ParseHexNumber(std::string_view hex);
// Undoes the `}` escapes of binary data (the `X` packet's data, qXfer);
// nullopt when the data ends in a lone `}`.
std::optional<std::vector<uint8_t>> Unescape(std::string_view data);

}  // namespace vmm::gdb
