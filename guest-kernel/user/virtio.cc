// virtio: the user-space virtio-mmio driver (virtio-rng and virtio-blk).
// Started by init only when the kernel command line has virtio_mmio.device=
// words. Handles: 2 its endpoint (receive), 3 the name service (send), 4 the
// MMIO root (map, write, derive), 5 the IRQ lines (map, derive), 6 a control
// token (create, memory, info, clock).
//
// For each `virtio_mmio.device=4K@0xADDR:IRQ` word it derives the device's
// window from the MMIO token, maps it, checks magic/version, negotiates
// VERSION_1 (+ FLUSH/RO for blk), sets queue 0 up (8 entries) in one DMA page
// and sets DRIVER_OK; binds the device's IRQ line to a notification. A
// request sleeps on that notification (10 ms timeouts) until the used ring
// moves: IRQ delivery is not reliable yet, the timeout makes it a poll.
// Registers "virtio" in namesvc and answers:
//   label 1 rng:       w0 = N (<= 1024) -> the bytes in the buffer, w0 = N
//   label 2 blk read:  w0 = disk, w1 = first sector, w2 = count
//                      -> w0 status (0 ok), w1 FNV-1a of the sectors, w2 capacity;
//                         the first sector's 512 bytes in the buffer
//   label 3 blk write: w0 = disk, w1 = sector, buffer = pattern (repeated to
//                      512 bytes) -> w0 status of the write, w1 status of FLUSH
//   label 4 counters:  w0 woken by IRQ, w1 by polling, w2 timed-out waits, w3 IRQs seen
#include "user/runtime.h"

namespace {

using namespace abi;
using user::Invoke;
using user::Print;
constexpr uint64_t kEp = 2, kNs = 3, kMmio = 4, kIrq = 5, kCtl = 6;
constexpr uint64_t kMmioBase = 0xd0000000;
constexpr uint32_t kQsz = 8;
constexpr int kMaxDev = 8;

// virtio-mmio v2 registers
constexpr uint32_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kDevFeatures = 0x010,
                   kDevFeaturesSel = 0x014, kDrvFeatures = 0x020, kDrvFeaturesSel = 0x024,
                   kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038,
                   kQueueReady = 0x044, kQueueNotify = 0x050, kIntStatus = 0x060,
                   kIntAck = 0x064, kStatus = 0x070, kDescLo = 0x080, kDescHi = 0x084,
                   kAvailLo = 0x090, kAvailHi = 0x094, kUsedLo = 0x0a0, kUsedHi = 0x0a4,
                   kConfig = 0x100;
constexpr uint32_t kStAck = 1, kStDriver = 2, kStDriverOk = 4, kStFeaturesOk = 8;

// The DMA page: descriptors, avail ring, used ring, then buffers.
constexpr uint64_t kOffDesc = 0, kOffAvail = 128, kOffUsed = 256, kOffHdr = 512,
                   kOffStatus = 528, kOffData = 1024, kOffRng = 2048;

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
  uint8_t* dma;  // one page
  uint64_t phys;
  uint16_t avail_idx, used_idx;
  uint64_t notify;  // notification bound to the IRQ line (bit 0), or 0: poll
  uint64_t by_irq, by_poll, timeouts, irqs;
  uint64_t capacity;
  bool ok;
};
Dev g_dev[kMaxDev];
int g_count = 0;

void Barrier() { asm volatile("mfence" ::: "memory"); }
uint32_t Rd(Dev& d, uint32_t off) { return *reinterpret_cast<volatile uint32_t*>(d.regs + off); }
void Wr(Dev& d, uint32_t off, uint32_t v) {
  *reinterpret_cast<volatile uint32_t*>(d.regs + off) = v;
}

uint64_t ParseHex(const char* s, size_t n, size_t* i) {
  uint64_t v = 0;
  for (; *i < n; ++*i) {
    const char c = s[*i];
    if (c >= '0' && c <= '9') v = v * 16 + static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + static_cast<uint64_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = v * 16 + static_cast<uint64_t>(c - 'A' + 10);
    else break;
  }
  return v;
}

bool Setup(Dev& d, uint64_t index) {
  if (Rd(d, kMagic) != 0x74726976 || Rd(d, kVersion) != 2) {
    Print("[virtio] device {}: bad magic/version\n", index);
    return false;
  }
  d.id = Rd(d, kDeviceId);
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
  uint32_t want0 = 0;
  if (d.id == 2) want0 = f0 & ((1u << 9) | (1u << 5));  // FLUSH, RO
  Wr(d, kDrvFeaturesSel, 0);
  Wr(d, kDrvFeatures, want0);
  Wr(d, kDrvFeaturesSel, 1);
  Wr(d, kDrvFeatures, 1);
  Wr(d, kStatus, kStAck | kStDriver | kStFeaturesOk);
  if ((Rd(d, kStatus) & kStFeaturesOk) == 0) {
    Print("[virtio] device {}: FEATURES_OK refused\n", index);
    return false;
  }
  uint64_t phys = 0;
  const int64_t fr = Invoke(kCtl, kOpAllocFrames, 1, 0, 0, &phys);
  if (fr < 0) {
    Print("[virtio] device {}: no DMA frame: {}\n", index, user::ErrorName(fr));
    return false;
  }
  const uint64_t va = kUserMapBase + 0x100000 + index * 0x1000;
  if (Invoke(static_cast<uint64_t>(fr), kOpMap, va, 1) < 0) return false;
  d.dma = reinterpret_cast<uint8_t*>(va);
  d.phys = phys;
  for (size_t i = 0; i < 4096; ++i) d.dma[i] = 0;
  Wr(d, kQueueSel, 0);
  if (Rd(d, kQueueNumMax) < kQsz) return false;
  Wr(d, kQueueNum, kQsz);
  Wr(d, kDescLo, static_cast<uint32_t>(phys + kOffDesc));
  Wr(d, kDescHi, static_cast<uint32_t>((phys + kOffDesc) >> 32));
  Wr(d, kAvailLo, static_cast<uint32_t>(phys + kOffAvail));
  Wr(d, kAvailHi, static_cast<uint32_t>((phys + kOffAvail) >> 32));
  Wr(d, kUsedLo, static_cast<uint32_t>(phys + kOffUsed));
  Wr(d, kUsedHi, static_cast<uint32_t>((phys + kOffUsed) >> 32));
  Wr(d, kQueueReady, 1);
  Wr(d, kStatus, kStAck | kStDriver | kStFeaturesOk | kStDriverOk);
  if (d.id == 2) {
    d.capacity = Rd(d, kConfig) | (static_cast<uint64_t>(Rd(d, kConfig + 4)) << 32);
  }
  d.ok = true;
  return true;
}

Desc* Descs(Dev& d) { return reinterpret_cast<Desc*>(d.dma + kOffDesc); }

// Posts the chain starting at descriptor 0 and polls the used ring (1 s).
// Takes a pending signal of the IRQ notification (poll): counts it as an IRQ
// that arrived for an earlier request, so the next wait starts clean.
void DrainIrq(Dev& d) {
  if (d.notify == 0) return;
  user::Buffer()->timeout_us = 0;
  user::Msg m;
  m.tag = kTagTimeout;
  if (user::Recv(d.notify, &m) >= 0) ++d.irqs;
}

bool Submit(Dev& d) {
  DrainIrq(d);
  volatile uint16_t* avail = reinterpret_cast<volatile uint16_t*>(d.dma + kOffAvail);
  avail[2 + (d.avail_idx % kQsz)] = 0;
  Barrier();
  ++d.avail_idx;
  avail[1] = d.avail_idx;
  Barrier();
  Wr(d, kQueueNotify, 0);
  volatile uint16_t* used = reinterpret_cast<volatile uint16_t*>(d.dma + kOffUsed);
  const int64_t start = Invoke(kCtl, kOpClock);
  bool woke = false;
  for (;;) {
    Barrier();
    if (used[1] != d.used_idx) break;
    if (Invoke(kCtl, kOpClock) - start > 1000000) return false;
    if (d.notify != 0) {
      // Sleep until the IRQ (or 10 ms, then look again: a lost edge costs a poll).
      user::Buffer()->timeout_us = 10000;
      user::Msg m;
      m.tag = kTagTimeout;
      woke = user::Recv(d.notify, &m) >= 0;
      if (!woke) ++d.timeouts;
    } else {
      user::Yield();
    }
  }
  if (woke) ++d.by_irq; else ++d.by_poll;
  ++d.used_idx;
  const uint32_t isr = Rd(d, kIntStatus);
  if (isr != 0) Wr(d, kIntAck, isr);
  return true;
}

uint32_t UsedLen(Dev& d) {
  const uint32_t* used = reinterpret_cast<const uint32_t*>(d.dma + kOffUsed + 4);
  return used[((d.used_idx - 1) % kQsz) * 2 + 1];
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
  Desc* ds = Descs(*d);
  ds[0] = Desc{d->phys + kOffRng, static_cast<uint32_t>(n), kDescWrite, 0};
  if (!Submit(*d)) return kErrTimeout;
  const uint32_t got = UsedLen(*d);
  for (uint32_t i = 0; i < got && i < n; ++i) out[i] = d->dma[kOffRng + i];
  return got;
}

// One blk request of type `type` (0 IN, 1 OUT, 4 FLUSH) on one sector.
int64_t BlkOne(Dev& d, uint32_t type, uint64_t sector) {
  uint32_t* hdr = reinterpret_cast<uint32_t*>(d.dma + kOffHdr);
  hdr[0] = type;
  hdr[1] = 0;
  *reinterpret_cast<uint64_t*>(d.dma + kOffHdr + 8) = sector;
  d.dma[kOffStatus] = 0xff;
  Desc* ds = Descs(d);
  ds[0] = Desc{d.phys + kOffHdr, 16, kDescNext, 1};
  if (type == 4) {
    ds[1] = Desc{d.phys + kOffStatus, 1, kDescWrite, 0};
  } else {
    ds[1] = Desc{d.phys + kOffData, 512, static_cast<uint16_t>(kDescNext | (type == 0 ? kDescWrite : 0)), 2};
    ds[2] = Desc{d.phys + kOffStatus, 1, kDescWrite, 0};
  }
  if (!Submit(d)) return kErrTimeout;
  return d.dma[kOffStatus];
}

void ParseDevices() {
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
    const int64_t win = Invoke(kMmio, kOpDeriveRange, addr - kMmioBase, 0x1000, kRightMap | kRightWrite);
    const uint64_t va = kUserMapBase + index * 0x1000;
    if (win < 0 || Invoke(static_cast<uint64_t>(win), kOpMap, va, 1) < 0) {
      Print("[virtio] device at {:#x}: cannot map: {}\n", addr, win);
      continue;
    }
    d.regs = reinterpret_cast<volatile uint8_t*>(va);
    if (!Setup(d, index)) continue;
    // IRQ: line `irq` -> a notification, bit 0 (the kernel sends the EOI).
    const int64_t line = Invoke(kIrq, kOpDeriveRange, irq, 1, kRightMap);
    const int64_t note = Invoke(kCtl, kOpCreateNotification);
    if (line >= 0 && note >= 0 &&
        Invoke(static_cast<uint64_t>(line), kOpBindIrq, static_cast<uint64_t>(note), 0) >= 0)
      d.notify = static_cast<uint64_t>(note);
    if (d.id == 2)
      Print("[virtio] blk at {:#x} irq {}: {} sectors\n", addr, irq, d.capacity);
    else if (d.id == 4)
      Print("[virtio] rng at {:#x} irq {}\n", addr, irq);
    else
      Print("[virtio] device id {} at {:#x} irq {}: no driver\n", d.id, addr, irq);
  }
}

}  // namespace

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  ParseDevices();
  IpcBuffer* buf = user::Buffer();
  const int64_t mine = Invoke(kEp, kOpDerive, kRightSend | kRightTransfer);
  const char name[] = "virtio";
  for (size_t i = 0; i < 6; ++i) buf->data[i] = static_cast<uint8_t>(name[i]);
  buf->xfer_handle = static_cast<uint64_t>(mine);
  user::Msg reg;
  reg.tag = MakeTag(1, 6, kXferCopy);
  const int64_t r = user::Call(kNs, &reg);
  if (r < 0 || reg.w[0] != 0) Print("[virtio] cannot register: {} {}\n", r, reg.w[0]);
  Print("[virtio] ready, {} devices\n", static_cast<uint64_t>(g_count));
  user::Msg m;
  user::Recv(kEp, &m);
  for (;;) {
    const uint64_t label = TagLabel(m.tag);
    uint64_t len = 0;
    buf->xfer_handle = 0;
    if (label == 1) {
      uint64_t n = m.w[0];
      if (n > kIpcDataMax) n = kIpcDataMax;
      if (n > 1024) n = 1024;
      const int64_t got = RngRead(buf->data, n);
      m.w[0] = static_cast<uint64_t>(got);
      if (got > 0) len = static_cast<uint64_t>(got);
    } else if (label == 2 || label == 3) {
      Dev* d = Find(2, m.w[0]);
      if (d == nullptr) {
        m.w[0] = static_cast<uint64_t>(kErrNotFound);
      } else if (label == 2) {
        uint32_t h = 0x811c9dc5;
        int64_t st = 0;
        for (uint64_t s = 0; s < m.w[2] && st == 0; ++s) {
          st = BlkOne(*d, 0, m.w[1] + s);
          if (st != 0) break;
          for (size_t i = 0; i < 512; ++i) h = (h ^ d->dma[kOffData + i]) * 0x01000193u;
          if (s == 0) {
            for (size_t i = 0; i < 512; ++i) buf->data[i] = d->dma[kOffData + i];
            len = 512;
          }
        }
        m.w[0] = static_cast<uint64_t>(st);
        m.w[1] = h;
        m.w[2] = d->capacity;
      } else {
        const uint64_t plen = TagLen(m.tag) == 0 ? 1 : TagLen(m.tag);
        for (size_t i = 0; i < 512; ++i)
          d->dma[kOffData + i] = TagLen(m.tag) == 0 ? 0 : buf->data[i % plen];
        const int64_t st = BlkOne(*d, 1, m.w[1]);
        m.w[0] = static_cast<uint64_t>(st);
        m.w[1] = static_cast<uint64_t>(st == 0 ? BlkOne(*d, 4, 0) : -1);
      }
    } else if (label == 4) {  // statistics: w0 completions seen after an IRQ, w1 by polling
      m.w[0] = m.w[1] = m.w[2] = m.w[3] = 0;
      for (int i = 0; i < g_count; ++i) {
        m.w[0] += g_dev[i].by_irq;
        m.w[1] += g_dev[i].by_poll;
        m.w[2] += g_dev[i].timeouts;
        DrainIrq(g_dev[i]);
        m.w[3] += g_dev[i].irqs;
      }
    } else {
      m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
    }
    m.tag = MakeTag(label, len);
    user::ReplyRecv(kEp, &m);
  }
}
