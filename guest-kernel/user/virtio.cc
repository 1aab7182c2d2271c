// virtio: the user-space virtio-mmio driver (virtio-rng, virtio-blk, virtio-console).
// Started by init only when the kernel command line has virtio_mmio.device=
// words. Handles: 2 its endpoint (receive), 3 the name service (send), 4 the
// MMIO root (map, write, derive), 5 the IRQ lines (map, derive), 6 a control
// token (create, memory, info, clock).
//
// For each `virtio_mmio.device=4K@0xADDR:IRQ` word it derives the device's
// window from the MMIO token, maps it, checks magic/version, negotiates
// VERSION_1 (+ FLUSH/RO for blk), sets queue 0 (and 1 for the console) up
// (16 entries) and binds the device's IRQ line to a notification, then sets
// DRIVER_OK.
//
// Completions are interrupt-driven (docs/guest-drivers.md, "Interrupts"):
// after posting a batch of requests the driver sleeps on the notification;
// on every wake-up it reads InterruptStatus, writes it back to InterruptACK
// and only then looks at the used ring, so a completion that lands after the
// ACK raises a new interrupt and one that landed before it is seen by that
// look. A wait ends with a 500 ms safety timeout that is counted (a lost
// interrupt shows in the counters, it does not hang a request).
//
// blk: up to kSlots requests in flight, each up to kSlotBytes, from the
// driver's own DMA area or from a client's DMA buffer attached by kAttach.
// IPC: user/virtio_protocol.h names the labels and reply layouts, the
// dispatch table at the end of this file serves them (docs/guest-drivers.md
// has the table).
//
// console (the first virtio-console device, port 0 only): receiveq 0 keeps
// kRxBufs buffers of kRxBufBytes posted at all times; a second thread of
// this process (ConsoleThread) sleeps on the console's IRQ notification,
// ACKs, copies filled receive buffers into a bounded input ring (kInBytes)
// and posts them again at once. When the ring is full it leaves the used
// buffers where they are: the host then holds further input in its own
// queue (flow control), nothing is dropped, and a reader's kConRead wakes
// the thread to continue. transmitq 1 is driven by the main thread
// (kConWrite): one buffer of up to 1 KiB at a time, completion signalled by
// the console thread. A host that reports bad ids or lengths, or never
// completes a transmit, is counted and bounded, never followed.
#include "abi/vmmfs.h"  // vmmfs_fnv1a, the one FNV-1a 32 of the guest and the host tool
#include "user/runtime.h"
#include "user/virtio_protocol.h"

namespace {

using namespace abi;
using user::Invoke;
using user::Print;
constexpr uint64_t kEp = 2, kNs = 3, kMmio = 4, kIrq = 5, kCtl = 6;
constexpr uint64_t kMmioBase = 0xd0000000;
constexpr uint32_t kQsz = 16;
constexpr int kMaxDev = 8;
constexpr uint32_t kSlots = 4;                 // blk requests in flight
constexpr uint64_t kSlotBytes = 64 * 1024;     // data per request
constexpr uint64_t kSafetyTimeoutUs = 500000;  // a wait longer than this is counted
constexpr int kMaxTimeouts = 10;               // then the request fails (kErrTimeout)

// virtio 1.2 §4.2.2 MMIO device register layout (version 2).
constexpr uint32_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kDevFeatures = 0x010,
                   kDevFeaturesSel = 0x014, kDrvFeatures = 0x020, kDrvFeaturesSel = 0x024,
                   kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044,
                   kQueueNotify = 0x050, kIntStatus = 0x060, kIntAck = 0x064, kStatus = 0x070,
                   kDescLo = 0x080, kDescHi = 0x084, kAvailLo = 0x090, kAvailHi = 0x094,
                   kUsedLo = 0x0a0, kUsedHi = 0x0a4, kConfig = 0x100;
constexpr uint32_t kStAck = 1, kStDriver = 2, kStDriverOk = 4, kStFeaturesOk = 8;
constexpr uint32_t kBlkFRo = 1u << 5, kBlkFFlush = 1u << 9;  // §5.2.3
constexpr uint32_t kBlkIn = 0, kBlkOut = 1, kBlkFlush = 4;   // §5.2.6
static_assert(virtio::kIoIn == kBlkIn && virtio::kIoOut == kBlkOut, "kBlkIo types are §5.2.6's");
constexpr uint8_t kBlkSIoErr = 1;

// Page 0 of a device's DMA area: the split virtqueue (§2.7) and the
// request headers/statuses; blk data slots follow from page 1.
constexpr uint64_t kOffDesc = 0, kOffAvail = 256, kOffUsed = 512, kOffHdr = 1024, kOffStatus = 1152,
                   kOffRng = 2048, kOffData = 4096;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
constexpr uint16_t kDescNext = 1, kDescWrite = 2;

struct Dev {
  uint32_t id;  // 2 blk, 4 rng
  uint64_t irq;
  volatile uint8_t* regs;
  uint8_t* dma;
  uint64_t phys;
  uint16_t avail_idx, used_idx;
  uint64_t notify;  // notification bound to the IRQ line (bit 0)
  uint64_t capacity;
  bool ok, read_only, has_flush;
  // Counters (kCounters).
  uint64_t requests;    // chains completed
  uint64_t by_irq;      // ... seen after a wake-up by the IRQ
  uint64_t by_timeout;  // ... seen only after a safety timeout (a lost interrupt)
  uint64_t wakeups;     // notification signals taken
  uint64_t spurious;    // wake-ups with nothing new in the used ring
  uint64_t timeouts;    // safety timeouts
  uint64_t acks;        // InterruptACK writes (InterruptStatus was non-zero)
  uint64_t batches;     // QueueNotify writes
};

// The virtio console (one device). The console thread owns the receive
// side (rx_*) and InterruptACK; the main thread owns the transmit side
// (tx_*). The input ring is single-producer (thread: in_head) and
// single-consumer (main: in_tail).
constexpr uint32_t kRxBufs = kQsz, kRxBufBytes = 128, kInBytes = 4096, kTxBytes = 1024;
// Console DMA area: receiveq at 0 (desc, avail 256, used 512), transmitq at
// 1024 (desc, avail 1280, used 1536), receive buffers at 2048, transmit
// buffer at 4096.
constexpr uint64_t kOffTxQ = 1024, kOffRxBuf = 2048, kOffTxBuf = 4096;
constexpr int kTxMaxTimeouts = 4;
struct Console {
  Dev* dev = nullptr;
  uint64_t tx_note = 0;    // signalled by the thread when an interrupt came
  uint64_t in_note = 0;    // bit 0: input arrived (a reader waits on it; kConAttach)
  uint64_t self_note = 0;  // the thread's notification: bit 0 IRQ, bit 1 ring has room again
  uint16_t rx_avail = 0, rx_used = 0;
  uint16_t tx_avail = 0;
  bool tx_broken = false;
  volatile uint32_t in_head = 0, in_tail = 0;  // free-running
  volatile bool stalled = false;  // the thread left used buffers: the ring was too full
  uint8_t in[kInBytes];
  // Counters (kConCounters).
  uint64_t bytes_in = 0, bytes_out = 0, rx_buffers = 0, bad_used = 0, irqs = 0, full_stalls = 0,
           tx_timeouts = 0;
};
Console g_con;
Dev g_dev[kMaxDev];
int g_count = 0;

// Client DMA buffers attached with kAttach (physical base, size).
struct Attached {
  uint64_t phys, size;
};
constexpr uint32_t kMaxAttached = 4;
Attached g_attached[kMaxAttached];

void Barrier() { asm volatile("mfence" ::: "memory"); }
uint32_t Rd(Dev& d, uint32_t off) { return *reinterpret_cast<volatile uint32_t*>(d.regs + off); }
void Wr(Dev& d, uint32_t off, uint32_t v) {
  *reinterpret_cast<volatile uint32_t*>(d.regs + off) = v;
}
Desc* Descs(Dev& d) { return reinterpret_cast<Desc*>(d.dma + kOffDesc); }
volatile uint16_t* Avail(Dev& d) { return reinterpret_cast<volatile uint16_t*>(d.dma + kOffAvail); }
volatile uint16_t* Used(Dev& d) { return reinterpret_cast<volatile uint16_t*>(d.dma + kOffUsed); }

uint64_t ParseHex(const char* s, size_t n, size_t* i) {
  uint64_t v = 0;
  for (; *i < n; ++*i) {
    const char c = s[*i];
    if (c >= '0' && c <= '9') {
      v = v * 16 + static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = v * 16 + static_cast<uint64_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v = v * 16 + static_cast<uint64_t>(c - 'A' + 10);
    } else {
      break;
    }
  }
  return v;
}

void SetAddr(Dev& d, uint32_t lo, uint64_t phys) {
  Wr(d, lo, static_cast<uint32_t>(phys));
  Wr(d, lo + 4, static_cast<uint32_t>(phys >> 32));
}

// Status handshake and feature negotiation (§3.1.1), queue 0 (§4.2.3.2).
// DRIVER_OK is set by the caller once the IRQ is bound.
bool Setup(Dev& d, uint64_t index) {
  if (Rd(d, kMagic) != 0x74726976 || Rd(d, kVersion) != 2) {
    Print("[virtio] device {}: bad magic/version\n", index);
    return false;
  }
  d.id = Rd(d, kDeviceId);
  if (d.id != 2 && d.id != 3 && d.id != 4) return false;
  if (d.id == 3 && g_con.dev != nullptr) return false;  // one console
  Wr(d, kStatus, 0);
  Wr(d, kStatus, kStAck);
  Wr(d, kStatus, kStAck | kStDriver);
  Wr(d, kDevFeaturesSel, 0);
  const uint32_t f0 = Rd(d, kDevFeatures);
  Wr(d, kDevFeaturesSel, 1);
  const uint32_t f1 = Rd(d, kDevFeatures);
  if ((f1 & 1) == 0) {
    Print("[virtio] device {}: no VERSION_1\n", index);
    return false;
  }
  const uint32_t want0 = d.id == 2 ? f0 & (kBlkFFlush | kBlkFRo) : 0;
  d.read_only = (want0 & kBlkFRo) != 0;
  d.has_flush = (want0 & kBlkFFlush) != 0;
  Wr(d, kDrvFeaturesSel, 0);
  Wr(d, kDrvFeatures, want0);
  Wr(d, kDrvFeaturesSel, 1);
  Wr(d, kDrvFeatures, 1);
  Wr(d, kStatus, kStAck | kStDriver | kStFeaturesOk);
  if ((Rd(d, kStatus) & kStFeaturesOk) == 0) {
    Print("[virtio] device {}: FEATURES_OK refused\n", index);
    return false;
  }
  // blk: the ring page plus kSlots data slots (contiguous, so one
  // descriptor covers a slot); rng: the ring page.
  const uint64_t pages = d.id == 2 ? 1 + kSlots * kSlotBytes / 4096 : d.id == 3 ? 2 : 1;
  uint64_t phys = 0;
  const int64_t fr = Invoke(kCtl, kOpAllocFrames, pages, 0, 0, &phys);
  if (fr < 0) {
    Print("[virtio] device {}: no DMA memory: {}\n", index, user::ErrorName(fr));
    return false;
  }
  // Each device's area at its own 1 MiB-aligned window above the registers.
  const uint64_t va = kUserMapBase + 0x1000000 + index * 0x100000;
  if (Invoke(static_cast<uint64_t>(fr), kOpMap, va, 1) < 0) return false;
  d.dma = reinterpret_cast<uint8_t*>(va);  // zeroed by the kernel
  d.phys = phys;
  Wr(d, kQueueSel, 0);
  if (Rd(d, kQueueNumMax) < kQsz) return false;
  Wr(d, kQueueNum, kQsz);
  SetAddr(d, kDescLo, phys + kOffDesc);
  SetAddr(d, kAvailLo, phys + kOffAvail);
  SetAddr(d, kUsedLo, phys + kOffUsed);
  Wr(d, kQueueReady, 1);
  if (d.id == 3) {  // transmitq (§5.3.2)
    Wr(d, kQueueSel, 1);
    if (Rd(d, kQueueNumMax) < kQsz) return false;
    Wr(d, kQueueNum, kQsz);
    SetAddr(d, kDescLo, phys + kOffTxQ + kOffDesc);
    SetAddr(d, kAvailLo, phys + kOffTxQ + kOffAvail);
    SetAddr(d, kUsedLo, phys + kOffTxQ + kOffUsed);
    Wr(d, kQueueReady, 1);
  }
  if (d.id == 2) d.capacity = Rd(d, kConfig) | (static_cast<uint64_t>(Rd(d, kConfig + 4)) << 32);
  return true;
}

// Sleeps until the used ring has caught up with everything posted (see the
// header comment for the ACK-then-look order). n: chains in this batch.
bool WaitAll(Dev& d, uint32_t n) {
  volatile uint16_t* used = Used(d);
  int timeouts = 0;
  for (;;) {
    user::Buffer()->timeout_us = kSafetyTimeoutUs;
    user::Msg m;
    m.tag = kTagTimeout;
    const bool woke = user::Recv(d.notify, &m) >= 0;
    if (woke) {
      ++d.wakeups;
    } else {
      ++d.timeouts;
      ++timeouts;
    }
    const uint32_t isr = Rd(d, kIntStatus);
    if (isr != 0) {
      Wr(d, kIntAck, isr);
      ++d.acks;
    }
    Barrier();
    if (used[1] == d.avail_idx) {
      d.requests += n;
      if (woke) {
        d.by_irq += n;
      } else {
        d.by_timeout += n;
      }
      d.used_idx = d.avail_idx;
      return true;
    }
    if (woke && used[1] == d.used_idx) ++d.spurious;
    if (timeouts >= kMaxTimeouts) return false;
  }
}

// Posts chains whose heads are heads[0..n) and waits for all of them.
bool Run(Dev& d, const uint16_t* heads, uint32_t n) {
  volatile uint16_t* avail = Avail(d);
  for (uint32_t i = 0; i < n; ++i) avail[2 + ((d.avail_idx + i) % kQsz)] = heads[i];
  Barrier();
  d.avail_idx = static_cast<uint16_t>(d.avail_idx + n);
  avail[1] = d.avail_idx;
  Barrier();
  Wr(d, kQueueNotify, 0);
  ++d.batches;
  return WaitAll(d, n);
}

Dev* Find(uint32_t id, uint64_t nth) {
  for (int i = 0; i < g_count; ++i) {
    if (g_dev[i].ok && g_dev[i].id == id && nth-- == 0) return &g_dev[i];
  }
  return nullptr;
}

int64_t RngRead(uint8_t* out, uint64_t n) {
  Dev* d = Find(4, 0);
  if (d == nullptr) return kErrNotFound;
  Descs(*d)[0] = Desc{d->phys + kOffRng, static_cast<uint32_t>(n), kDescWrite, 0};
  const uint16_t head = 0;
  if (!Run(*d, &head, 1)) return kErrTimeout;
  const uint32_t* used = reinterpret_cast<const uint32_t*>(d->dma + kOffUsed + 4);
  const uint32_t got = used[((d->used_idx - 1) % kQsz) * 2 + 1];
  for (uint32_t i = 0; i < got && i < n; ++i) out[i] = d->dma[kOffRng + i];
  return got;
}

// One blk request: type, first sector, data at physical `data` (len bytes,
// a multiple of 512; 0 for FLUSH).
struct Req {
  uint32_t type;
  uint64_t sector;
  uint64_t data;
  uint32_t len;
};

// Runs up to kSlots requests at once. Returns 0, the first non-zero virtio
// status (1 IOERR, 2 UNSUPP), or kErrTimeout.
int64_t BlkBatch(Dev& d, const Req* reqs, uint32_t n) {
  uint16_t heads[kSlots] = {};
  Desc* ds = Descs(d);
  for (uint32_t k = 0; k < n; ++k) {
    const uint16_t h = static_cast<uint16_t>(3 * k);
    uint32_t* hdr = reinterpret_cast<uint32_t*>(d.dma + kOffHdr + 16 * k);
    hdr[0] = reqs[k].type;
    hdr[1] = 0;
    *reinterpret_cast<uint64_t*>(hdr + 2) = reqs[k].sector;
    d.dma[kOffStatus + 16 * k] = 0xff;
    const uint64_t status = d.phys + kOffStatus + 16 * k;
    ds[h] = Desc{d.phys + kOffHdr + 16 * k, 16, kDescNext, static_cast<uint16_t>(h + 1)};
    if (reqs[k].len == 0) {
      ds[h + 1] = Desc{status, 1, kDescWrite, 0};
    } else {
      const uint16_t dir = reqs[k].type == kBlkIn ? kDescWrite : 0;
      ds[h + 1] = Desc{reqs[k].data, reqs[k].len, static_cast<uint16_t>(kDescNext | dir),
                       static_cast<uint16_t>(h + 2)};
      ds[h + 2] = Desc{status, 1, kDescWrite, 0};
    }
    heads[k] = h;
  }
  if (!Run(d, heads, n)) return kErrTimeout;
  for (uint32_t k = 0; k < n; ++k) {
    const uint8_t st = d.dma[kOffStatus + 16 * k];
    if (st != 0) return st;
  }
  return 0;
}

// Moves `count` sectors between the disk (from `sector`) and physical
// memory at `phys`, in requests of up to kSlotBytes, kSlots at a time.
int64_t BlkIo(Dev& d, uint32_t type, uint64_t sector, uint64_t count, uint64_t phys) {
  if (sector > d.capacity || count > d.capacity - sector) return kBlkSIoErr;
  while (count > 0) {
    Req reqs[kSlots];
    uint32_t n = 0;
    for (; n < kSlots && count > 0; ++n) {
      const uint64_t c = count < kSlotBytes / 512 ? count : kSlotBytes / 512;
      reqs[n] = Req{type, sector, phys, static_cast<uint32_t>(c * 512)};
      sector += c;
      count -= c;
      phys += c * 512;
    }
    const int64_t st = BlkBatch(d, reqs, n);
    if (st != 0) return st;
  }
  return 0;
}

int64_t BlkFlush(Dev& d) {
  if (!d.has_flush) return 0;
  const Req r{kBlkFlush, 0, 0, 0};
  return BlkBatch(d, &r, 1);
}

// kBlkChecksum (shell `blk read N`): FNV-1a of sectors [first, first + count),
// read through the driver's own slots.
int64_t BlkChecksum(Dev& d, uint64_t first, uint64_t count, uint32_t* hash, uint8_t* first512) {
  uint32_t h = VMMFS_FNV_INIT;
  bool copied = false;
  const uint64_t chunk = kSlots * kSlotBytes / 512;
  while (count > 0) {
    const uint64_t c = count < chunk ? count : chunk;
    const int64_t st = BlkIo(d, kBlkIn, first, c, d.phys + kOffData);
    if (st != 0) return st;
    const uint8_t* p = d.dma + kOffData;
    h = vmmfs_fnv1a(h, p, c * 512);
    if (!copied) {
      for (size_t i = 0; i < 512; ++i) first512[i] = p[i];
      copied = true;
    }
    first += c;
    count -= c;
  }
  *hash = h;
  return 0;
}

// The pattern `blk fill` writes: byte at disk offset p = (7p + p/512 + seed) mod 256.
uint8_t PatternByte(uint64_t p, uint64_t seed) {
  return static_cast<uint8_t>(7 * p + p / 512 + seed);
}

int64_t BlkFill(Dev& d, uint64_t first, uint64_t count, uint64_t seed) {
  const uint64_t chunk = kSlots * kSlotBytes / 512;
  while (count > 0) {
    const uint64_t c = count < chunk ? count : chunk;
    uint8_t* p = d.dma + kOffData;
    const uint64_t base = first * 512;
    for (uint64_t i = 0; i < c * 512; ++i) p[i] = PatternByte(base + i, seed);
    const int64_t st = BlkIo(d, kBlkOut, first, c, d.phys + kOffData);
    if (st != 0) return st;
    first += c;
    count -= c;
  }
  return 0;
}

// kBlkBench: the in-driver benchmark. mode kBenchSeqRead, kBenchSeqWrite (of
// whatever the slots hold) or kBenchRandRead (random 4 KiB reads). amount:
// bytes (sequential modes) or the number of reads; req: bytes per request
// (4 KiB..64 KiB, sequential modes); depth: requests in flight (1..kSlots).
int64_t BlkBench(Dev& d, uint64_t mode, uint64_t amount, uint64_t req, uint64_t depth,
                 uint64_t* elapsed_us, uint64_t* done) {
  if (depth == 0 || depth > kSlots) depth = kSlots;
  if (mode == virtio::kBenchRandRead) req = 4096;
  if (req < 512 || req > kSlotBytes || req % 512 != 0) return kErrInvalidArgument;
  const uint64_t spr = req / 512;  // sectors per request
  if (d.capacity < spr) return kErrInvalidArgument;
  const uint64_t total = mode == virtio::kBenchRandRead ? amount : amount / req;
  const uint32_t type = mode == virtio::kBenchSeqWrite ? kBlkOut : kBlkIn;
  uint64_t seq = 0, rnd = 0x9e3779b97f4a7c15ull;
  const uint64_t slots4k = d.capacity / 8;  // random reads: 4 KiB aligned
  const int64_t t0 = Invoke(kCtl, kOpClock);
  uint64_t n_done = 0;
  while (n_done < total) {
    Req reqs[kSlots];
    uint32_t n = 0;
    for (; n < depth && n_done + n < total; ++n) {
      uint64_t sector;
      if (mode == virtio::kBenchRandRead) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        sector = ((rnd >> 33) % slots4k) * 8;
      } else {
        if (seq + spr > d.capacity) seq = 0;
        sector = seq;
        seq += spr;
      }
      reqs[n] = Req{type, sector, d.phys + kOffData + n * kSlotBytes, static_cast<uint32_t>(req)};
    }
    const int64_t st = BlkBatch(d, reqs, n);
    if (st != 0) return st;
    n_done += n;
  }
  if (mode == virtio::kBenchSeqWrite) {
    const int64_t st = BlkFlush(d);
    if (st != 0) return st;
  }
  *elapsed_us = static_cast<uint64_t>(Invoke(kCtl, kOpClock) - t0);
  *done = n_done;
  return 0;
}

// ---- console ----------------------------------------------------------------

volatile uint16_t* RxAvail(Console& c) { return Avail(*c.dev); }
volatile uint16_t* RxUsed(Console& c) { return Used(*c.dev); }
volatile uint16_t* TxAvail(Console& c) {
  return reinterpret_cast<volatile uint16_t*>(c.dev->dma + kOffTxQ + kOffAvail);
}
volatile uint16_t* TxUsed(Console& c) {
  return reinterpret_cast<volatile uint16_t*>(c.dev->dma + kOffTxQ + kOffUsed);
}

// Offers receive buffer `id` to the device again.
void RxPost(Console& c, uint32_t id) {
  Dev& d = *c.dev;
  Descs(d)[id] = Desc{d.phys + kOffRxBuf + id * kRxBufBytes, kRxBufBytes, kDescWrite, 0};
  RxAvail(c)[2 + (c.rx_avail % kQsz)] = static_cast<uint16_t>(id);
  Barrier();
  c.rx_avail = static_cast<uint16_t>(c.rx_avail + 1);
  RxAvail(c)[1] = c.rx_avail;
}

// Console thread: moves filled receive buffers into the input ring and posts
// them again. Stops (leaving the rest for later) when the ring cannot take a
// buffer's bytes. Returns the bytes moved.
uint32_t RxDrain(Console& c) {
  Dev& d = *c.dev;
  uint32_t moved = 0;
  bool posted = false;
  c.stalled = false;
  Barrier();
  const uint16_t used_idx = RxUsed(c)[1];
  // The device cannot have used more than was posted; a host that claims so
  // is counted and only the plausible entries are looked at.
  uint16_t avail_limit = static_cast<uint16_t>(c.rx_avail - c.rx_used);
  if (static_cast<uint16_t>(used_idx - c.rx_used) > avail_limit) ++c.bad_used;
  while (c.rx_used != used_idx && avail_limit > 0) {
    const uint32_t* elem =
        reinterpret_cast<const uint32_t*>(d.dma + kOffUsed + 4) + 2 * (c.rx_used % kQsz);
    const uint32_t id = elem[0];
    uint32_t len = elem[1];
    if (id >= kRxBufs) {  // not a buffer of ours: skip the entry
      ++c.bad_used;
      c.rx_used = static_cast<uint16_t>(c.rx_used + 1);
      --avail_limit;
      continue;
    }
    if (len > kRxBufBytes) {
      ++c.bad_used;
      len = kRxBufBytes;
    }
    const uint32_t room = kInBytes - (c.in_head - c.in_tail);
    if (len > room) {
      ++c.full_stalls;
      c.stalled = true;
      Barrier();
      break;  // the reader frees room and signals bit 1
    }
    const uint8_t* src = d.dma + kOffRxBuf + id * kRxBufBytes;
    uint32_t head = c.in_head;
    for (uint32_t i = 0; i < len; ++i) c.in[(head + i) % kInBytes] = src[i];
    Barrier();
    c.in_head = head + len;
    moved += len;
    c.bytes_in += len;
    ++c.rx_buffers;
    c.rx_used = static_cast<uint16_t>(c.rx_used + 1);
    --avail_limit;
    RxPost(c, id);
    posted = true;
  }
  if (posted) {
    Barrier();
    Wr(d, kQueueNotify, 0);
  }
  return moved;
}

// The console thread (kOpCreateThread): sleeps on the console's notification
// (bit 0 its IRQ line, bit 1 "the reader made room"), ACKs the interrupt the
// way WaitAll does (ACK, then look), drains the receive queue and tells the
// transmit side and the reader. `ipc` is this thread's own IpcBuffer.
extern "C" [[noreturn]] void ConsoleThread(uint64_t, uint64_t ipc) {
  Console& c = g_con;
  Dev& d = *c.dev;
  IpcBuffer* buf = reinterpret_cast<IpcBuffer*>(ipc);
  for (;;) {
    buf->timeout_us = kSafetyTimeoutUs;  // a lost interrupt costs at most this
    user::Msg m;
    m.tag = kTagTimeout;
    user::Recv(c.self_note, &m);
    const uint32_t isr = Rd(d, kIntStatus);
    if (isr != 0) {
      Wr(d, kIntAck, isr);
      ++c.irqs;
    }
    Barrier();
    if (RxDrain(c) > 0) {
      user::Msg s;
      s.w[0] = 1;
      user::Send(c.in_note, &s);
    }
    user::Msg t;
    t.w[0] = 1;
    user::Send(c.tx_note, &t);
  }
}

// After DRIVER_OK: notifications, the receive buffers, the thread.
bool ConsoleStart(Dev& d, uint64_t heap) {
  Console& c = g_con;
  c.dev = &d;
  const int64_t tx = Invoke(kCtl, kOpCreateNotification);
  const int64_t in = Invoke(kCtl, kOpCreateNotification);
  if (tx < 0 || in < 0) return false;
  c.tx_note = static_cast<uint64_t>(tx);
  c.in_note = static_cast<uint64_t>(in);
  c.self_note = d.notify;
  for (uint32_t id = 0; id < kRxBufs; ++id) RxPost(c, id);
  Barrier();
  Wr(d, kQueueNotify, 0);
  // The thread's stack: the top of the first 64 KiB of the lazily backed heap.
  const int64_t t = Invoke(kSelfHandle, kOpCreateThread, reinterpret_cast<uint64_t>(&ConsoleThread),
                           heap + 64 * 1024, 0);
  return t > 0;
}

// kConWrite: transmits n (<= kTxBytes) bytes and waits until the device has
// used the buffer. -> n, or kErrTimeout (then every later write fails fast:
// the device does not complete transmits).
int64_t ConWrite(Console& c, const uint8_t* p, uint64_t n) {
  if (c.dev == nullptr) return kErrNotFound;
  if (c.tx_broken) return kErrTimeout;
  if (n == 0) return 0;
  if (n > kTxBytes) n = kTxBytes;
  Dev& d = *c.dev;
  for (uint64_t i = 0; i < n; ++i) d.dma[kOffTxBuf + i] = p[i];
  Desc* ds = reinterpret_cast<Desc*>(d.dma + kOffTxQ + kOffDesc);
  ds[0] = Desc{d.phys + kOffTxBuf, static_cast<uint32_t>(n), 0, 0};
  TxAvail(c)[2 + (c.tx_avail % kQsz)] = 0;
  Barrier();
  c.tx_avail = static_cast<uint16_t>(c.tx_avail + 1);
  TxAvail(c)[1] = c.tx_avail;
  Barrier();
  Wr(d, kQueueNotify, 1);
  int timeouts = 0;
  for (;;) {
    Barrier();
    if (TxUsed(c)[1] == c.tx_avail) break;
    user::Buffer()->timeout_us = kSafetyTimeoutUs;
    user::Msg m;
    m.tag = kTagTimeout;
    if (user::Recv(c.tx_note, &m) < 0) {
      ++c.tx_timeouts;
      if (++timeouts >= kTxMaxTimeouts) {
        c.tx_broken = true;
        return kErrTimeout;
      }
    }
  }
  c.bytes_out += n;
  return static_cast<int64_t>(n);
}

// kConRead: up to n bytes of input, never blocks. Wakes the console thread
// when the ring had been too full to take a buffer.
uint64_t ConRead(Console& c, uint8_t* out, uint64_t n) {
  Barrier();
  const uint32_t head = c.in_head, tail = c.in_tail;
  uint64_t avail = head - tail;
  if (avail > n) avail = n;
  for (uint64_t i = 0; i < avail; ++i) out[i] = c.in[(tail + i) % kInBytes];
  Barrier();
  c.in_tail = tail + static_cast<uint32_t>(avail);
  // A stall happens only with more than kInBytes - kRxBufBytes bytes in the
  // ring, more than one read takes: a stall this read misses, the next sees.
  if (avail > 0 && c.stalled) {
    user::Msg s;
    s.w[0] = 2;
    user::Send(c.self_note, &s);
  }
  return avail;
}

void ParseDevices(uint64_t heap) {
  char text[1024];
  const int64_t n = Invoke(kCtl, kOpCmdline, reinterpret_cast<uint64_t>(text), sizeof(text));
  if (n <= 0) return;
  const size_t len = static_cast<size_t>(n);
  const char key[] = "virtio_mmio.device=";
  const size_t klen = sizeof(key) - 1;
  for (size_t i = 0; i + klen <= len && g_count < kMaxDev; ++i) {
    if (i != 0 && text[i - 1] != ' ') continue;
    bool match = true;
    for (size_t k = 0; k < klen; ++k) match = match && text[i + k] == key[k];
    if (!match) continue;
    size_t j = i + klen;
    while (j < len && text[j] != '@' && text[j] != ' ') ++j;
    if (j + 3 >= len || text[j] != '@' || text[j + 1] != '0' || text[j + 2] != 'x') continue;
    j += 3;
    const uint64_t addr = ParseHex(text, len, &j);
    uint64_t irq = 0;
    if (j < len && text[j] == ':') {
      for (++j; j < len && text[j] >= '0' && text[j] <= '9'; ++j)
        irq = irq * 10 + static_cast<uint64_t>(text[j] - '0');
    }
    const uint64_t index = static_cast<uint64_t>(g_count);
    Dev& d = g_dev[g_count++];
    d.irq = irq;
    if (addr < kMmioBase) continue;
    const int64_t win =
        Invoke(kMmio, kOpDeriveRange, addr - kMmioBase, 0x1000, kRightMap | kRightWrite);
    const uint64_t va = kUserMapBase + index * 0x1000;
    if (win < 0 || Invoke(static_cast<uint64_t>(win), kOpMap, va, 1) < 0) {
      Print("[virtio] device at {:#x}: cannot map: {}\n", addr, win);
      continue;
    }
    d.regs = reinterpret_cast<volatile uint8_t*>(va);
    if (!Setup(d, index)) {
      if (d.id != 2 && d.id != 3 && d.id != 4)
        Print("[virtio] device id {} at {:#x} irq {}: no driver\n", d.id, addr, irq);
      Wr(d, kStatus, 0x80);  // FAILED (§2.1)
      continue;
    }
    // IRQ line -> a notification, bit 0 (the kernel sends the EOI). Bound
    // before DRIVER_OK so that no interrupt of the device is missed.
    const int64_t line = Invoke(kIrq, kOpDeriveRange, irq, 1, kRightMap);
    const int64_t note = Invoke(kCtl, kOpCreateNotification);
    if (line < 0 || note < 0 ||
        Invoke(static_cast<uint64_t>(line), kOpBindIrq, static_cast<uint64_t>(note), 0) < 0) {
      Print("[virtio] device at {:#x}: cannot bind IRQ {}\n", addr, irq);
      Wr(d, kStatus, 0x80);
      continue;
    }
    d.notify = static_cast<uint64_t>(note);
    Wr(d, kStatus, kStAck | kStDriver | kStFeaturesOk | kStDriverOk);
    d.ok = true;
    if (d.id == 3) {
      if (!ConsoleStart(d, heap)) {
        Print("[virtio] console at {:#x}: cannot start its thread\n", addr);
        d.ok = false;
        g_con.dev = nullptr;
        Wr(d, kStatus, 0x80);
        continue;
      }
      Print("[virtio] console at {:#x} irq {}: {} receive buffers of {} bytes\n", addr, irq,
            kRxBufs, kRxBufBytes);
    } else if (d.id == 2) {
      Print("[virtio] blk at {:#x} irq {}: {} sectors{}\n", addr, irq, d.capacity,
            d.read_only ? " (read-only)" : "");
    } else {
      Print("[virtio] rng at {:#x} irq {}\n", addr, irq);
    }
  }
}

// kBlkIo argument checks: a sector range of an attached buffer.
int64_t AttachedIo(Dev& d, const user::Msg& m) {
  const virtio::IoRequest q = virtio::UnpackIoRequest(m.w[0]);
  const uint64_t sector = m.w[1], count = m.w[2], offset = m.w[3];
  if ((q.type != virtio::kIoIn && q.type != virtio::kIoOut) || q.buffer >= kMaxAttached ||
      g_attached[q.buffer].size == 0)
    return kErrInvalidArgument;
  const Attached& a = g_attached[q.buffer];
  if (count == 0 || count > a.size / 512 || offset > a.size || count * 512 > a.size - offset)
    return kErrInvalidArgument;
  return BlkIo(d, static_cast<uint32_t>(q.type), sector, count, a.phys + offset);
}

// ---- IPC ---------------------------------------------------------------------

// One request being served: m arrives as the request and leaves as the reply;
// the handler also sets what the reply carries besides the words.
struct Request {
  user::Msg& m;
  IpcBuffer* buf;
  uint64_t xfer;                  // the token that came with it (kAttach), 0 if none
  Dev* blk;                       // the disk DiskOf(w0) names (handlers that need one)
  uint64_t len = 0;               // reply bytes in the buffer
  uint64_t xfer_out = kXferNone;  // the reply's transfer kind (the token in buf->xfer_handle)
  uint64_t xfer_close = 0;        // our handle of a token sent by copy: closed after the reply
};

void OnRngRead(Request& r) {
  const uint64_t n = r.m.w[0] > 1024 ? 1024 : r.m.w[0];
  const int64_t got = RngRead(r.buf->data, n);
  r.m.w[0] = static_cast<uint64_t>(got);
  if (got > 0) r.len = static_cast<uint64_t>(got);
}

void OnCounters(Request& r) {
  virtio::DriverCounters c = {};
  for (int i = 0; i < g_count; ++i) {
    c.completions += g_dev[i].requests;
    c.by_irq += g_dev[i].by_irq;
    c.by_timeout += g_dev[i].by_timeout;
    c.timeouts += g_dev[i].timeouts;
    c.spurious += g_dev[i].spurious;
    c.acks += g_dev[i].acks;
  }
  virtio::PackDriverCounters(c, r.m.w);
}

void OnAttach(Request& r) {
  uint64_t base = 0;
  const int64_t size = r.xfer != 0 ? Invoke(r.xfer, kOpRangeInfo, 0, 0, 0, &base) : kErrBadHandle;
  uint32_t id = 0;
  while (id < kMaxAttached && g_attached[id].size != 0) ++id;
  if (size <= 0 || (static_cast<uint64_t>(Invoke(r.xfer, kOpInspect)) & 0xff) != kObjFrames) {
    r.m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
  } else if (id == kMaxAttached) {
    r.m.w[0] = static_cast<uint64_t>(kErrNoSlots);
  } else {
    g_attached[id] = Attached{base, static_cast<uint64_t>(size)};
    r.m.w[0] = id;
  }
}

void OnBlkChecksum(Request& r) {
  uint32_t h = 0;
  const uint64_t count = r.m.w[2] == 0 ? 1 : r.m.w[2];
  const int64_t st = BlkChecksum(*r.blk, r.m.w[1], count, &h, r.buf->data);
  if (st == 0) r.len = 512;
  virtio::PackChecksumReply({static_cast<uint64_t>(st), h, r.blk->capacity}, r.m.w);
}

// One sector filled with the buffer's pattern (zeros without one), then FLUSH.
void OnBlkWrite(Request& r) {
  Dev& d = *r.blk;
  const uint64_t n = TagLen(r.m.tag);
  const uint64_t plen = n == 0 ? 1 : n;
  for (size_t i = 0; i < 512; ++i) d.dma[kOffData + i] = n == 0 ? 0 : r.buf->data[i % plen];
  const int64_t st = BlkIo(d, kBlkOut, r.m.w[1], 1, d.phys + kOffData);
  const int64_t flush = st == 0 ? BlkFlush(d) : -1;
  virtio::PackWriteReply({static_cast<uint64_t>(st), static_cast<uint64_t>(flush)}, r.m.w);
}

void OnBlkIo(Request& r) { r.m.w[0] = static_cast<uint64_t>(AttachedIo(*r.blk, r.m)); }

void OnBlkFill(Request& r) {
  const int64_t st = BlkFill(*r.blk, r.m.w[1], r.m.w[2], r.m.w[3]);
  const int64_t flush = st == 0 ? BlkFlush(*r.blk) : -1;
  virtio::PackWriteReply({static_cast<uint64_t>(st), static_cast<uint64_t>(flush)}, r.m.w);
}

void OnBlkBench(Request& r) {
  Dev& d = *r.blk;
  const virtio::BenchRequest q = virtio::UnpackBenchRequest(r.m.w[0]);
  uint64_t us = 0, done = 0;
  const uint64_t requests0 = d.requests, batches0 = d.batches;
  const int64_t st = BlkBench(d, q.mode, r.m.w[1], r.m.w[2], q.depth, &us, &done);
  virtio::PackBenchReply(
      {static_cast<uint64_t>(st), us, done, d.requests - requests0, d.batches - batches0}, r.m.w);
}

void OnBlkInfo(Request& r) {
  const Dev& d = *r.blk;
  virtio::PackInfoReply({0, d.capacity, d.read_only ? 1u : 0u, d.requests}, r.m.w);
}

void OnBlkFlush(Request& r) { r.m.w[0] = static_cast<uint64_t>(BlkFlush(*r.blk)); }

void OnConWrite(Request& r) {
  r.m.w[0] = static_cast<uint64_t>(ConWrite(g_con, r.buf->data, TagLen(r.m.tag)));
}

void OnConRead(Request& r) {
  const uint64_t n = r.m.w[0] > kIpcDataMax ? kIpcDataMax : r.m.w[0];
  r.len = ConRead(g_con, r.buf->data, n);
  r.m.w[0] = r.len;
}

// The input notification, wait right only, by kXferCopy.
void OnConAttach(Request& r) {
  const int64_t h = Invoke(g_con.in_note, kOpDerive, kRightRecv | kRightTransfer);
  r.m.w[0] = static_cast<uint64_t>(h < 0 ? h : 0);
  if (h > 0) {
    r.buf->xfer_handle = static_cast<uint64_t>(h);
    r.xfer_out = kXferCopy;
    r.xfer_close = static_cast<uint64_t>(h);
  }
}

void OnConCounters(Request& r) {
  const Console& c = g_con;
  virtio::PackConsoleCounters({c.bytes_in, c.bytes_out, c.in_head - c.in_tail, c.full_stalls,
                               c.irqs, c.bad_used, c.tx_timeouts},
                              r.m.w);
}

// What a label's handler needs before it runs; without it the request
// answers kErrNotFound.
enum class Needs : uint8_t { kNothing, kDisk, kConsole };
struct Handler {
  void (*serve)(Request&) = nullptr;  // nullptr: no such label (kErrInvalidArgument)
  Needs needs = Needs::kNothing;
};
struct HandlerTable {
  Handler at[virtio::kLabelCount];
};

// The dispatch table, indexed by label (built by name, so that no entry can
// land at the wrong index).
constexpr HandlerTable MakeHandlers() {
  HandlerTable t{};
  t.at[virtio::kRngRead] = {OnRngRead, Needs::kNothing};
  t.at[virtio::kBlkChecksum] = {OnBlkChecksum, Needs::kDisk};
  t.at[virtio::kBlkWrite] = {OnBlkWrite, Needs::kDisk};
  t.at[virtio::kCounters] = {OnCounters, Needs::kNothing};
  t.at[virtio::kAttach] = {OnAttach, Needs::kNothing};
  t.at[virtio::kBlkIo] = {OnBlkIo, Needs::kDisk};
  t.at[virtio::kBlkFill] = {OnBlkFill, Needs::kDisk};
  t.at[virtio::kBlkBench] = {OnBlkBench, Needs::kDisk};
  t.at[virtio::kBlkInfo] = {OnBlkInfo, Needs::kDisk};
  t.at[virtio::kBlkFlush] = {OnBlkFlush, Needs::kDisk};
  t.at[virtio::kConWrite] = {OnConWrite, Needs::kConsole};
  t.at[virtio::kConRead] = {OnConRead, Needs::kConsole};
  t.at[virtio::kConAttach] = {OnConAttach, Needs::kConsole};
  t.at[virtio::kConCounters] = {OnConCounters, Needs::kConsole};
  return t;
}
constexpr HandlerTable kHandlers = MakeHandlers();

constexpr bool EveryLabelServed(const HandlerTable& t) {
  for (uint64_t label = 1; label < virtio::kLabelCount; ++label) {
    if (t.at[label].serve == nullptr) return false;
  }
  return t.at[0].serve == nullptr;
}
static_assert(EveryLabelServed(kHandlers), "a label of virtio_protocol.h has no handler");

// Serves one request: r.m becomes the reply's words.
void Serve(uint64_t label, Request& r) {
  const Handler h = label < virtio::kLabelCount ? kHandlers.at[label] : Handler{};
  if (h.serve == nullptr) {
    r.m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
    return;
  }
  if (h.needs == Needs::kDisk) r.blk = Find(2, virtio::DiskOf(r.m.w[0]));
  if ((h.needs == Needs::kDisk && r.blk == nullptr) ||
      (h.needs == Needs::kConsole && g_con.dev == nullptr)) {
    r.m.w[0] = static_cast<uint64_t>(kErrNotFound);
    return;
  }
  h.serve(r);
}

}  // namespace

extern "C" int64_t UserMain(uint64_t heap, uint64_t, uint64_t, uint64_t, uint64_t) {
  ParseDevices(heap);
  IpcBuffer* buf = user::Buffer();
  if (const int64_t r = user::RegisterName(kNs, "virtio", kEp); r != 0) {
    Print("[virtio] cannot register: {}\n", user::ErrorName(r));
  }
  Print("[virtio] ready, {} devices\n", static_cast<uint64_t>(g_count));
  user::Msg m;
  buf->xfer_handle = 0;
  user::Recv(kEp, &m);
  for (;;) {
    const uint64_t label = TagLabel(m.tag);
    Request r{m, buf, buf->xfer_handle, nullptr};
    buf->xfer_handle = 0;
    Serve(label, r);
    m.tag = MakeTag(label, r.len, r.xfer_out);
    user::ReplyRecv(kEp, &m);
    // The receiver has its own child token now; ours is not needed.
    if (r.xfer_close != 0) Invoke(r.xfer_close, kOpClose);
  }
}
