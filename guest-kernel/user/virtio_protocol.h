// IPC protocol of the user-space virtio driver (user/virtio.cc), shared with
// its clients (user/shell.cc, user/files.cc). Labels, the words of requests
// that pack several fields, and the layouts of multi-word replies; the table
// is in docs/guest-drivers.md, "IPC (label: request -> reply)".
//
// Status words: 0 OK, 1 IOERR, 2 UNSUPP (virtio 1.2 §5.2.6), or a negative
// abi::kErr*. Requests for a disk name it in the low byte of w0 (DiskOf); a
// disk that does not exist answers kErrNotFound, as do the console labels
// without a console. A reply layout's Pack writes only the words it names:
// the others go back as the request had them.
#pragma once

#include <stdint.h>

namespace virtio {

// Labels, each with its request -> reply.
// w0 n (<= 1024) -> w0 bytes, the bytes in the buffer.
inline constexpr uint64_t kRngRead = 1;
// w0 disk, w1 first sector, w2 count (0 counts as 1) -> ChecksumReply, the
// first sector in the buffer.
inline constexpr uint64_t kBlkChecksum = 2;
// w0 disk, w1 sector, buffer = a pattern (none: zeros) repeated over the
// sector, then FLUSH -> WriteReply.
inline constexpr uint64_t kBlkWrite = 3;
// -> DriverCounters, summed over all devices.
inline constexpr uint64_t kCounters = 4;
// A frames token by kXferCopy -> w0 its buffer id (or kErrInvalidArgument,
// kErrNoSlots: 4 buffers at most).
inline constexpr uint64_t kAttach = 5;
// w0 IoRequest, w1 sector, w2 count, w3 byte offset in the attached buffer
// -> w0 status.
inline constexpr uint64_t kBlkIo = 6;
// w0 disk, w1 first sector, w2 count, w3 seed: byte at disk offset p =
// (7p + p/512 + seed) mod 256, then FLUSH -> WriteReply.
inline constexpr uint64_t kBlkFill = 7;
// w0 BenchRequest, w1 bytes (sequential modes) or reads (kBenchRandRead),
// w2 request bytes -> BenchReply.
inline constexpr uint64_t kBlkBench = 8;
// w0 disk -> InfoReply.
inline constexpr uint64_t kBlkInfo = 9;
// w0 disk -> w0 status.
inline constexpr uint64_t kBlkFlush = 10;
// buffer = bytes (<= 1024) -> w0 bytes sent once the device used them, or
// kErrTimeout.
inline constexpr uint64_t kConWrite = 11;
// w0 max -> w0 bytes, the bytes in the buffer; never blocks.
inline constexpr uint64_t kConRead = 12;
// -> w0 0 and, by kXferCopy, a wait-only token for the input notification
// (bit 0: input arrived).
inline constexpr uint64_t kConAttach = 13;
// -> ConsoleCounters.
inline constexpr uint64_t kConCounters = 14;
// Labels are 1..kLabelCount - 1; the driver's dispatch table has kLabelCount
// entries.
inline constexpr uint64_t kLabelCount = 15;

// kBlkIo transfer directions (the virtio-blk request types, §5.2.6).
inline constexpr uint64_t kIoIn = 0;   // disk -> buffer
inline constexpr uint64_t kIoOut = 1;  // buffer -> disk

// kBlkBench modes.
inline constexpr uint64_t kBenchSeqRead = 0, kBenchSeqWrite = 1, kBenchRandRead = 2;

// One field of a packed word: `bits` wide at bit `shift`.
constexpr uint64_t GetField(uint64_t word, unsigned shift, unsigned bits) {
  return (word >> shift) & ((1ull << bits) - 1);
}
constexpr uint64_t PutField(uint64_t value, unsigned shift, unsigned bits) {
  return (value & ((1ull << bits) - 1)) << shift;
}

// The disk a request names (w0 bits 0..7).
constexpr uint64_t DiskOf(uint64_t w0) { return GetField(w0, 0, 8); }

// kBlkIo w0 = disk | type << 8 | buffer id << 16.
struct IoRequest {
  uint64_t disk, type, buffer;
};
constexpr uint64_t PackIoRequest(const IoRequest& r) {
  return PutField(r.disk, 0, 8) | PutField(r.type, 8, 8) | PutField(r.buffer, 16, 8);
}
constexpr IoRequest UnpackIoRequest(uint64_t w0) {
  return IoRequest{DiskOf(w0), GetField(w0, 8, 8), GetField(w0, 16, 8)};
}

// kBlkBench w0 = disk | mode << 8 | depth << 16 (depth 1..4 in flight).
struct BenchRequest {
  uint64_t disk, mode, depth;
};
constexpr uint64_t PackBenchRequest(const BenchRequest& r) {
  return PutField(r.disk, 0, 8) | PutField(r.mode, 8, 8) | PutField(r.depth, 16, 8);
}
constexpr BenchRequest UnpackBenchRequest(uint64_t w0) {
  return BenchRequest{DiskOf(w0), GetField(w0, 8, 8), GetField(w0, 16, 8)};
}

// kBlkChecksum: w0 status, w1 FNV-1a of the sectors, w2 the disk's capacity.
struct ChecksumReply {
  uint64_t status, checksum, capacity;
};
constexpr void PackChecksumReply(const ChecksumReply& r, uint64_t (&w)[4]) {
  w[0] = r.status;
  w[1] = r.checksum;
  w[2] = r.capacity;
}
constexpr ChecksumReply UnpackChecksumReply(const uint64_t (&w)[4]) {
  return ChecksumReply{w[0], w[1], w[2]};
}

// kBlkWrite, kBlkFill: w0 status of the writes, w1 status of the FLUSH that
// follows them (-1: not sent, the writes failed).
struct WriteReply {
  uint64_t status, flush_status;
};
constexpr void PackWriteReply(const WriteReply& r, uint64_t (&w)[4]) {
  w[0] = r.status;
  w[1] = r.flush_status;
}
constexpr WriteReply UnpackWriteReply(const uint64_t (&w)[4]) { return WriteReply{w[0], w[1]}; }

// kBlkInfo: w0 0 (or kErrNotFound), w1 capacity, w2 read-only (0/1), w3
// requests completed so far on the disk.
struct InfoReply {
  uint64_t status, capacity, read_only, requests;
};
constexpr void PackInfoReply(const InfoReply& r, uint64_t (&w)[4]) {
  w[0] = r.status;
  w[1] = r.capacity;
  w[2] = r.read_only;
  w[3] = r.requests;
}
constexpr InfoReply UnpackInfoReply(const uint64_t (&w)[4]) {
  return InfoReply{w[0], w[1], w[2], w[3]};
}

// kCounters: w0 completions, w1 of them seen after an IRQ, w2 seen only
// after a safety timeout, w3 = timeouts (20 bits) | spurious wake-ups (20
// bits) << 20 | InterruptACK writes (24 bits) << 40.
struct DriverCounters {
  uint64_t completions, by_irq, by_timeout, timeouts, spurious, acks;
};
constexpr void PackDriverCounters(const DriverCounters& c, uint64_t (&w)[4]) {
  w[0] = c.completions;
  w[1] = c.by_irq;
  w[2] = c.by_timeout;
  w[3] = PutField(c.timeouts, 0, 20) | PutField(c.spurious, 20, 20) | PutField(c.acks, 40, 24);
}
constexpr DriverCounters UnpackDriverCounters(const uint64_t (&w)[4]) {
  return DriverCounters{
      w[0], w[1], w[2], GetField(w[3], 0, 20), GetField(w[3], 20, 20), GetField(w[3], 40, 24)};
}

// kBlkBench: w0 status, w1 microseconds, w2 requests done, w3 = virtqueue
// requests (32 bits) | QueueNotify writes (32 bits) << 32.
struct BenchReply {
  uint64_t status, us, done, virtqueue_requests, notifies;
};
constexpr void PackBenchReply(const BenchReply& r, uint64_t (&w)[4]) {
  w[0] = r.status;
  w[1] = r.us;
  w[2] = r.done;
  w[3] = PutField(r.virtqueue_requests, 0, 32) | PutField(r.notifies, 32, 32);
}
constexpr BenchReply UnpackBenchReply(const uint64_t (&w)[4]) {
  return BenchReply{w[0], w[1], w[2], GetField(w[3], 0, 32), GetField(w[3], 32, 32)};
}

// kConCounters: w0 bytes in, w1 bytes out, w2 = bytes buffered (32 bits) |
// ring-full stalls (32 bits) << 32, w3 = interrupts (24 bits) | bad used
// entries (20 bits) << 24 | transmit timeouts (20 bits) << 44.
struct ConsoleCounters {
  uint64_t bytes_in, bytes_out, buffered, full_stalls, irqs, bad_used, tx_timeouts;
};
constexpr void PackConsoleCounters(const ConsoleCounters& c, uint64_t (&w)[4]) {
  w[0] = c.bytes_in;
  w[1] = c.bytes_out;
  w[2] = PutField(c.buffered, 0, 32) | PutField(c.full_stalls, 32, 32);
  w[3] = PutField(c.irqs, 0, 24) | PutField(c.bad_used, 24, 20) | PutField(c.tx_timeouts, 44, 20);
}
constexpr ConsoleCounters UnpackConsoleCounters(const uint64_t (&w)[4]) {
  return ConsoleCounters{w[0],
                         w[1],
                         GetField(w[2], 0, 32),
                         GetField(w[2], 32, 32),
                         GetField(w[3], 0, 24),
                         GetField(w[3], 24, 20),
                         GetField(w[3], 44, 20)};
}

// The layouts round-trip (checked where the header is compiled).
static_assert(UnpackIoRequest(PackIoRequest({1, kIoOut, 3})).buffer == 3);
static_assert(GetField(PutField(0xfffff, 20, 20) | PutField(1, 40, 24), 40, 24) == 1);
static_assert(PutField(1ull << 24, 0, 24) == 0, "a field never spills into the next");

}  // namespace virtio
