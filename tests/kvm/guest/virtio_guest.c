// A tiny freestanding guest for the virtio KVM tests (tests/kvm/virtio_test.cc).
// vmm boots it as a plain ELF64: long mode, ring 0, the first 4 GiB identity
// mapped, interrupts off, the command line at 0x20000 (docs/architecture.md). The first
// command-line word picks the mode; the result leaves through the exit port.
//
//   console   device 0 is a virtio-console: bring it up, send a message on
//             the transmit queue, wait for the used ring; exit 42.
//   echo      device 0 is a virtio-console: post a receive buffer, wait
//             (bounded) for host input, send it back prefixed "echo: "; exit 43.
//   hostile   device 0 is a virtio-blk and device 1 a virtio-rng: scribble
//             on every register (garbage values, rings outside RAM and in the
//             MMIO hole, QueueNum > max, bad notifies, wrong-state writes,
//             garbage descriptor tables), read every offset of both 4 KiB
//             windows, then reset the rng, bring it up properly and read
//             16 random bytes; exit 33.
// Other exit codes name the step that failed (see Fail()).
#include <stddef.h>
#include <stdint.h>

#define MMIO_BASE 0xd0000000ull
#define MMIO_STRIDE 0x1000ull

// virtio 1.2 §4.2.2 register offsets.
enum {
  kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044,
  kQueueNotify = 0x050, kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
  kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4,
};
enum { kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8 };

// RAM the guest gives to devices: rings and buffers (the kernel is at 2 MiB,
// page tables and stack below 1 MiB; nothing else lives here).
#define RINGS 0x300000ull
#define SCRATCH 0x1000000ull  // 16 MiB .. 32 MiB: garbage the devices may touch
#define SCRATCH_SIZE 0x1000000ull

static inline void Out32(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
static inline void Out8(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
static void Exit(uint32_t code) {
  Out32(0xf4, code);
  for (;;) __asm__ volatile("hlt");
}
static void Fail(uint32_t step) { Exit(step); }

static void Print(const char* s) {
  while (*s) Out8(0x3f8, (uint8_t)*s++);
}

static inline uint32_t Rd(uint64_t dev, uint32_t off) {
  return *(volatile uint32_t*)(MMIO_BASE + dev * MMIO_STRIDE + off);
}
static inline void Wr(uint64_t dev, uint32_t off, uint32_t v) {
  *(volatile uint32_t*)(MMIO_BASE + dev * MMIO_STRIDE + off) = v;
}
static inline void Wr8(uint64_t dev, uint32_t off, uint8_t v) {
  *(volatile uint8_t*)(MMIO_BASE + dev * MMIO_STRIDE + off) = v;
}
static inline void Wr16(uint64_t dev, uint32_t off, uint16_t v) {
  *(volatile uint16_t*)(MMIO_BASE + dev * MMIO_STRIDE + off) = v;
}
static inline uint8_t Rd8(uint64_t dev, uint32_t off) {
  return *(volatile uint8_t*)(MMIO_BASE + dev * MMIO_STRIDE + off);
}
static inline void Fence(void) { __asm__ volatile("mfence" ::: "memory"); }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t Random(void) {  // xorshift64
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

// Split ring of 8 at `base`: descriptors +0, avail +0x100, used +0x200.
struct Ring {
  volatile struct Desc* desc;
  volatile uint16_t* avail;  // flags, idx, ring[8], used_event
  volatile uint16_t* used;   // flags, idx, then {u32 id, u32 len}[8]
  uint64_t base;
};
static struct Ring MakeRing(uint64_t base) {
  struct Ring r;
  r.base = base;
  r.desc = (volatile struct Desc*)base;
  r.avail = (volatile uint16_t*)(base + 0x100);
  r.used = (volatile uint16_t*)(base + 0x200);
  for (uint64_t i = 0; i < 0x300; i += 8) *(volatile uint64_t*)(base + i) = 0;
  return r;
}

// Reset, negotiate VERSION_1 only; returns 0 if FEATURES_OK stuck.
static int Negotiate(uint64_t dev) {
  Wr(dev, kStatus, 0);
  Wr(dev, kStatus, kAck);
  Wr(dev, kStatus, kAck | kDriver);
  Wr(dev, kDriverFeaturesSel, 0);
  Wr(dev, kDriverFeatures, 0);
  Wr(dev, kDriverFeaturesSel, 1);
  Wr(dev, kDriverFeatures, 1);  // VIRTIO_F_VERSION_1 (bit 32)
  Wr(dev, kStatus, kAck | kDriver | kFeaturesOk);
  return (Rd(dev, kStatus) & kFeaturesOk) ? 0 : -1;
}

static void SetUpQueue(uint64_t dev, uint32_t q, const struct Ring* r) {
  Wr(dev, kQueueSel, q);
  Wr(dev, kQueueNum, 8);
  Wr(dev, kQueueDescLow, (uint32_t)r->base);
  Wr(dev, kQueueDescHigh, 0);
  Wr(dev, kQueueDriverLow, (uint32_t)(r->base + 0x100));
  Wr(dev, kQueueDriverHigh, 0);
  Wr(dev, kQueueDeviceLow, (uint32_t)(r->base + 0x200));
  Wr(dev, kQueueDeviceHigh, 0);
  Wr(dev, kQueueReady, 1);
}

// Offers one buffer on queue `q` and waits (bounded) for the used ring.
// Returns the used length, or -1.
static int64_t Transfer(uint64_t dev, uint32_t q, struct Ring* r, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next) {
  const uint16_t idx = r->avail[1];
  const uint16_t used_before = r->used[1];
  r->desc[0].addr = addr;
  r->desc[0].len = len;
  r->desc[0].flags = flags;
  r->desc[0].next = next;
  r->avail[2 + idx % 8] = 0;
  Fence();
  r->avail[1] = (uint16_t)(idx + 1);
  Fence();
  Wr(dev, kQueueNotify, q);
  for (uint32_t spin = 0; spin < 2000000; ++spin) {
    Fence();
    if (r->used[1] != used_before) {
      volatile uint32_t* elem = (volatile uint32_t*)((uint64_t)r->used + 4 + 8 * (used_before % 8));
      Wr(dev, kInterruptAck, Rd(dev, kInterruptStatus));
      return elem[1];
    }
  }
  return -1;
}

static void ConsoleMode(void) {
  const uint64_t dev = 0;
  if (Rd(dev, kMagic) != 0x74726976) Fail(10);
  if (Rd(dev, kVersion) != 2) Fail(11);
  if (Rd(dev, kDeviceId) != 3) Fail(12);
  if (Negotiate(dev) != 0) Fail(13);
  struct Ring rx = MakeRing(RINGS);
  struct Ring tx = MakeRing(RINGS + 0x1000);
  SetUpQueue(dev, 0, &rx);
  SetUpQueue(dev, 1, &tx);
  Wr(dev, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  if (Rd(dev, kStatus) != (kAck | kDriver | kFeaturesOk | kDriverOk)) Fail(14);
  static const char kLines[2][40] = {"hello from virtio-console\n", "second buffer: 0123456789\n"};
  for (int i = 0; i < 2; ++i) {
    const char* text = kLines[i];
    uint32_t len = 0;
    while (text[len]) ++len;
    volatile char* buffer = (volatile char*)(RINGS + 0x3000);
    for (uint32_t j = 0; j < len; ++j) buffer[j] = text[j];
    if (Transfer(dev, 1, &tx, RINGS + 0x3000, len, 0, 0) < 0) Fail(15 + (uint32_t)i);
  }
  Print("[guest] virtio-console: 2 buffers sent\n");
  Exit(42);
}

static void EchoMode(void) {
  const uint64_t dev = 0;
  if (Rd(dev, kDeviceId) != 3) Fail(12);
  if (Negotiate(dev) != 0) Fail(13);
  struct Ring rx = MakeRing(RINGS);
  struct Ring tx = MakeRing(RINGS + 0x1000);
  SetUpQueue(dev, 0, &rx);
  SetUpQueue(dev, 1, &tx);
  Wr(dev, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  // The receive buffer waits for host input: up to ~30 s of polling.
  const uint64_t in = RINGS + 0x3000;
  int64_t got = -1;
  for (int tries = 0; tries < 10 && got < 0; ++tries) {
    if (tries == 0) {
      got = Transfer(dev, 0, &rx, in, 64, 2 /* WRITE */, 0);
    } else {
      for (uint32_t spin = 0; spin < 2000000 && got < 0; ++spin) {
        Fence();
        if (rx.used[1] != 0) got = ((volatile uint32_t*)((uint64_t)rx.used + 4))[1];
      }
    }
  }
  if (got <= 0) Fail(18);
  volatile char* out = (volatile char*)(RINGS + 0x4000);
  const char* prefix = "echo: ";
  uint32_t n = 0;
  while (prefix[n]) {
    out[n] = prefix[n];
    ++n;
  }
  for (int64_t i = 0; i < got; ++i) out[n++] = ((volatile char*)in)[i];
  if (Transfer(dev, 1, &tx, RINGS + 0x4000, n, 0, 0) < 0) Fail(19);
  Exit(43);
}

// An address no RAM backs: above 4 GiB, in the MMIO hole, or at the top.
static uint64_t BadAddress(void) {
  switch (Random() % 4) {
    case 0: return 0xd0000000ull + (Random() & 0xfff0);  // MMIO hole (the devices themselves)
    case 1: return 0x100000000ull + (Random() & 0xffffff0);
    case 2: return 0xfffffffffffff000ull;
    default: return 0x8000000ull + ((Random() & 0x7ffffff) & ~0xfull);  // past 128 MiB of RAM
  }
}

static void ScribbleRegisters(uint64_t dev) {
  // Every register offset, garbage values, a few rounds; interleaved with
  // status values that walk the state machine in and out of order.
  for (int round = 0; round < 4; ++round) {
    for (uint32_t off = 0; off < 0x200; off += 4) {
      uint32_t value = (uint32_t)Random();
      if (off == kQueueDescHigh || off == kQueueDriverHigh || off == kQueueDeviceHigh) {
        value |= 1;  // keep rings out of RAM: never above our own code
      } else if (off == kQueueDescLow || off == kQueueDriverLow || off == kQueueDeviceLow) {
        value = (uint32_t)BadAddress();
      } else if (off == kStatus && (Random() & 1)) {
        value &= 0xff;
      }
      Wr(dev, off, value);
      (void)Rd(dev, off);
    }
    // Byte and halfword accesses, misaligned ones too.
    for (uint32_t off = 0; off < 0x120; off += 3) {
      Wr8(dev, off, (uint8_t)Random());
      Wr16(dev, off, (uint16_t)Random());
      (void)Rd8(dev, off);
    }
  }
}

static void QueueSetUpAbuse(uint64_t dev) {
  // QueueNum above the maximum and not a power of two, then ready.
  (void)Negotiate(dev);
  const uint32_t sizes[] = {0, 3, 1024, 0x10000, 0xffffffff, 512};
  for (uint32_t q = 0; q < 3; ++q) {
    Wr(dev, kQueueSel, q);
    for (uint32_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
      Wr(dev, kQueueNum, sizes[i]);
      Wr(dev, kQueueReady, 1);
      Wr(dev, kQueueReady, 0);
    }
  }
  // Rings outside RAM / in the MMIO hole, then DRIVER_OK: NEEDS_RESET.
  for (int attempt = 0; attempt < 6; ++attempt) {
    (void)Negotiate(dev);
    Wr(dev, kQueueSel, 0);
    Wr(dev, kQueueNum, 8);
    const uint64_t where[3] = {BadAddress(), BadAddress(), BadAddress()};
    Wr(dev, kQueueDescLow, (uint32_t)where[0]);
    Wr(dev, kQueueDescHigh, (uint32_t)(where[0] >> 32));
    Wr(dev, kQueueDriverLow, (uint32_t)where[1]);
    Wr(dev, kQueueDriverHigh, (uint32_t)(where[1] >> 32));
    Wr(dev, kQueueDeviceLow, (uint32_t)where[2]);
    Wr(dev, kQueueDeviceHigh, (uint32_t)(where[2] >> 32));
    Wr(dev, kQueueReady, 1);
    Wr(dev, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
    Wr(dev, kQueueNotify, 0);
    Wr(dev, kQueueNotify, 1);
    Wr(dev, kQueueNotify, 0xffffffff);
    // Writes in the wrong state: queue registers after DRIVER_OK, features.
    Wr(dev, kQueueNum, 2);
    Wr(dev, kDriverFeatures, 0xffffffff);
    Wr(dev, kStatus, kAck);  // clears bits
  }
}

static void GarbageRings(uint64_t dev) {
  // A properly set-up queue whose descriptors and available ring are garbage:
  // indices out of range, loops, huge lengths, buffers outside RAM or in the
  // scratch area, wrong directions, indirect flags.
  for (int attempt = 0; attempt < 8; ++attempt) {
    struct Ring r = MakeRing(RINGS + 0x4000);
    if (Negotiate(dev) != 0) Fail(20);
    SetUpQueue(dev, 0, &r);
    Wr(dev, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
    for (int i = 0; i < 8; ++i) {
      r.desc[i].addr = (Random() & 1) ? Random() : SCRATCH + (Random() % (SCRATCH_SIZE - 0x10000));
      r.desc[i].len = (Random() & 1) ? (uint32_t)Random() : (uint32_t)(Random() & 0xfff);
      r.desc[i].flags = (uint16_t)(Random() & 7);
      r.desc[i].next = (uint16_t)((Random() & 1) ? Random() : Random() % 8);
      r.avail[2 + i] = (uint16_t)((Random() & 3) ? Random() % 8 : Random());
    }
    if (attempt % 2 == 0) {
      // A block request header in scratch memory with a sector past the end.
      volatile uint32_t* header = (volatile uint32_t*)SCRATCH;
      header[0] = (uint32_t)(Random() % 10);
      header[1] = 0;
      *(volatile uint64_t*)(SCRATCH + 8) = Random();
      r.desc[0].addr = SCRATCH;
      r.desc[0].len = 16;
      r.desc[0].flags = 1;  // NEXT
      r.desc[0].next = 1;
      r.desc[1].addr = SCRATCH + 0x1000;
      r.desc[1].len = 1;
      r.desc[1].flags = 2;  // WRITE
      r.avail[2] = 0;
    }
    Fence();
    r.avail[1] = (uint16_t)((attempt == 7) ? Random() : 1 + Random() % 8);
    Fence();
    Wr(dev, kQueueNotify, 0);
    Wr(dev, kQueueNotify, (uint32_t)Random());
    (void)Rd(dev, kInterruptStatus);
    Wr(dev, kInterruptAck, (uint32_t)Random());
  }
}

static void ReadEverything(uint64_t dev) {
  uint32_t sink = 0;
  for (uint32_t off = 0; off < 0x1000; off += 4) sink ^= Rd(dev, off);
  for (uint32_t off = 0x100; off < 0x240; ++off) sink ^= Rd8(dev, off);
  (void)sink;
}

static void HostileMode(void) {
  if (Rd(0, kDeviceId) != 2) Fail(30);
  if (Rd(1, kDeviceId) != 4) Fail(31);
  for (uint64_t dev = 0; dev < 2; ++dev) {
    ScribbleRegisters(dev);
    QueueSetUpAbuse(dev);
    GarbageRings(dev);
    ScribbleRegisters(dev);
    ReadEverything(dev);
  }
  // Both devices must still work after a reset.
  struct Ring r = MakeRing(RINGS + 0x8000);
  if (Negotiate(1) != 0) Fail(32);
  SetUpQueue(1, 0, &r);
  Wr(1, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  if (Rd(1, kStatus) & 64) Fail(34);  // NEEDS_RESET right after a clean bring-up
  if (Transfer(1, 0, &r, RINGS + 0x9000, 16, 2, 0) != 16) Fail(35);
  struct Ring b = MakeRing(RINGS + 0xa000);
  if (Negotiate(0) != 0) Fail(36);
  SetUpQueue(0, 0, &b);
  Wr(0, kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  // A one-sector read: header, 512 bytes, status (a 3-descriptor chain).
  volatile uint32_t* header = (volatile uint32_t*)(RINGS + 0xb000);
  header[0] = 0;  // IN
  header[1] = 0;
  *(volatile uint64_t*)(RINGS + 0xb008) = 0;
  *(volatile uint8_t*)(RINGS + 0xb400) = 0xee;
  b.desc[1].addr = RINGS + 0xb200;
  b.desc[1].len = 512;
  b.desc[1].flags = 1 | 2;
  b.desc[1].next = 2;
  b.desc[2].addr = RINGS + 0xb400;
  b.desc[2].len = 1;
  b.desc[2].flags = 2;
  if (Transfer(0, 0, &b, RINGS + 0xb000, 16, 1, 1) != 513) Fail(37);
  if (*(volatile uint8_t*)(RINGS + 0xb400) != 0) Fail(38);  // VIRTIO_BLK_S_OK
  Print("[guest] hostile: done\n");
  Exit(33);
}

static int StartsWith(const char* s, const char* prefix) {
  while (*prefix) {
    if (*s++ != *prefix++) return 0;
  }
  return 1;
}

__attribute__((section(".text.start"))) void _start(void) {
  const char* cmdline = (const char*)0x20000;
  if (StartsWith(cmdline, "console")) ConsoleMode();
  if (StartsWith(cmdline, "hostile")) HostileMode();
  if (StartsWith(cmdline, "echo")) EchoMode();
  Fail(1);
}
