// shell: the serial console's command line. Handles: 2 the name service
// (send), 3 a control token (clock, info, power, console, spawn, create,
// memory). Input arrives through the kernel's interrupt-driven COM1 buffer:
// the shell binds a notification to it and sleeps on that. Line editing:
// backspace/DEL, Ctrl-U (kill line), Ctrl-C (cancel), CR or LF ends a line.
// `sh=CMD;CMD` on the kernel command line runs commands first (',' stands
// for a space), for boot-suite cases.
//
// A second instance runs on the virtio console when init starts it with
// argument 1 (kernel command-line word `vconsole=shell`): then Out() sends
// the text to the virtio driver (virtio::kConWrite), GetChar() takes input
// from it (virtio::kConRead) and sleeps on the driver's input notification
// (virtio::kConAttach) instead of COM1. Everything else is the same program
// (docs/guest-drivers.md, "The virtio console").
#include "abi/vmmfs.h"  // vmmfs_fnv1a, the one FNV-1a 32 of the guest and the host tool
#include "user/files_protocol.h"
#include "user/runtime.h"
#include "user/virtio_protocol.h"

namespace {

using namespace abi;
using user::Invoke;
constexpr uint64_t kNs = kFirstGivenHandle, kCtl = kFirstGivenHandle + 1;

uint64_t g_notify = 0;
char g_in[256];
size_t g_in_pos = 0, g_in_len = 0;
uint64_t g_heap = 0;

// The virtio console backend (argument 1): the driver's endpoint, 0 on COM1.
uint64_t g_vcon = 0;

// Text to the virtio console through the driver, in IPC-buffer pieces. `s`
// may lie in this thread's IpcBuffer (e.g. a reply being printed): the
// forward copy is then a no-op or moves bytes down, both safe.
void VconOut(const char* s, size_t n) {
  abi::IpcBuffer* b = user::Buffer();
  while (n > 0) {
    const size_t k = n < kIpcDataMax ? n : kIpcDataMax;
    uint8_t* dst = b->data;
    const uint8_t* src = reinterpret_cast<const uint8_t*>(s);
    if (src != dst) {
      for (size_t i = 0; i < k; ++i) dst[i] = src[i];
    }
    b->xfer_handle = 0;
    user::Msg m;
    m.tag = MakeTag(virtio::kConWrite, k);
    if (user::Call(g_vcon, &m) < 0 || static_cast<int64_t>(m.w[0]) < 0) return;
    s += k;
    n -= k;
  }
}

void Out(const char* s, size_t n) {
  if (g_vcon != 0) {
    VconOut(s, n);
  } else {
    user::DebugPrint(s, n);
  }
}
void Out(const char* s) { Out(s, user::StrLen(s)); }

// user::Print, but through Out() (so it follows the shell's console).
template <typename... Args>
void Print(const char* fmt, Args... args) {
  char text[512];
  size_t len;
  if constexpr (sizeof...(Args) == 0) {
    len = lib::VFormatBuffer(text, sizeof(text), fmt, nullptr, 0);
  } else {
    const lib::FmtArg list[] = {lib::MakeFmtArg(args)...};
    len = lib::VFormatBuffer(text, sizeof(text), fmt, list, sizeof...(Args));
  }
  if (len >= sizeof(text)) len = sizeof(text) - 1;
  Out(text, len);
}

// Input from the virtio console: what the driver holds, else 0.
int64_t VconRead(char* out, size_t cap) {
  abi::IpcBuffer* b = user::Buffer();
  b->xfer_handle = 0;
  user::Msg m;
  m.tag = MakeTag(virtio::kConRead);
  m.w[0] = cap;
  if (user::Call(g_vcon, &m) < 0) return 0;
  const size_t n = TagLen(m.tag) < cap ? TagLen(m.tag) : cap;
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(b->data[i]);
  return static_cast<int64_t>(n);
}

char GetChar() {
  while (g_in_pos == g_in_len) {
    const int64_t n =
        g_vcon != 0 ? VconRead(g_in, sizeof(g_in))
                    : Invoke(kCtl, kOpConsoleRead, reinterpret_cast<uint64_t>(g_in), sizeof(g_in));
    if (n > 0) {
      g_in_pos = 0;
      g_in_len = static_cast<size_t>(n);
      break;
    }
    user::Msg m;
    user::Recv(g_notify, &m);
  }
  return g_in[g_in_pos++];
}

// Reads a line with editing; returns its length (no terminator).
size_t ReadLine(char* line, size_t cap) {
  size_t n = 0;
  for (;;) {
    const char c = GetChar();
    if (c == '\r' || c == '\n') {
      if (c == '\r' && g_in_pos < g_in_len && g_in[g_in_pos] == '\n') ++g_in_pos;
      Out("\r\n", 2);
      return n;
    }
    if (c == 0x7f || c == 0x08) {
      if (n > 0) {
        --n;
        Out("\b \b", 3);
      }
    } else if (c == 0x15) {  // Ctrl-U
      while (n > 0) {
        --n;
        Out("\b \b", 3);
      }
    } else if (c == 0x03) {  // Ctrl-C
      Out("^C\r\n", 4);
      return 0;
    } else if (c >= 0x20 && c < 0x7f && n + 1 < cap) {
      line[n++] = c;
      Out(&c, 1);
    }
  }
}

bool ParseU64(const char* s, size_t n, uint64_t* out) {
  if (n == 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  *out = v;
  return true;
}

uint64_t Median(uint64_t* v, size_t n) {
  user::Sort(v, n);
  return v[n / 2];
}

int64_t LookUp(const char* name) { return user::LookUpName(kNs, name); }

// Sleeps about `us` microseconds (a timed wait on a notification nobody signals).
uint64_t g_sleeper = 0;
void Sleep(uint64_t us) {
  if (g_sleeper == 0) {
    const int64_t n = Invoke(kCtl, kOpCreateNotification);
    if (n < 0) return;
    g_sleeper = static_cast<uint64_t>(n);
  }
  user::Buffer()->timeout_us = us;
  user::Msg m;
  m.tag = kTagTimeout;
  user::Recv(g_sleeper, &m);
}

// A service started by init with the virtio devices (the driver, the file
// service): it registers once its start-up I/O is done, so wait up to ~5 s.
int64_t Service(const char* name) {
  int64_t h = kErrNotFound;
  for (int i = 0; i < 500 && h == kErrNotFound; ++i) {
    h = LookUp(name);
    if (h == kErrNotFound) Sleep(10000);
  }
  return h;
}

// The virtio driver (user/virtio.cc).
int64_t Virtio() {
  const int64_t h = Service("virtio");
  if (h < 0)
    Print("virtio: no driver ({}); start vmm with --rng or --disk\r\n", user::ErrorName(h));
  return h;
}

void Hex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  char out[2 * 64];
  size_t k = 0;
  for (size_t i = 0; i < n && k + 2 <= sizeof(out); ++i) {
    out[k++] = kDigits[p[i] >> 4];
    out[k++] = kDigits[p[i] & 15];
  }
  Out(out, k);
}

void Rng(uint64_t n) {
  if (n == 0 || n > 64) n = 16;
  const int64_t h = Virtio();
  if (h < 0) return;
  user::Msg m;
  m.tag = MakeTag(virtio::kRngRead);
  m.w[0] = n;
  const int64_t r = user::Call(static_cast<uint64_t>(h), &m);
  Invoke(static_cast<uint64_t>(h), kOpClose);
  if (r < 0 || static_cast<int64_t>(m.w[0]) <= 0) {
    Print("rng: failed: {}\r\n", user::ErrorName(r < 0 ? r : static_cast<int64_t>(m.w[0])));
    return;
  }
  uint8_t bytes[64];
  const uint64_t got = m.w[0] < sizeof(bytes) ? m.w[0] : sizeof(bytes);
  for (uint64_t i = 0; i < got; ++i) bytes[i] = user::Buffer()->data[i];  // Print may reuse it
  Print("[rng] {} random bytes: ", m.w[0]);
  Hex(bytes, got);
  Out("\r\n");
}

// Splits the next space-separated word off [*i, n).
size_t Word(const char* s, size_t n, size_t* i, const char** w) {
  while (*i < n && s[*i] == ' ') ++*i;
  *w = s + *i;
  const size_t b = *i;
  while (*i < n && s[*i] != ' ') ++*i;
  return *i - b;
}

// Calls the driver (or service) h; prints a failure. Returns false on failure.
bool CallService(const char* what, int64_t h, user::Msg* m) {
  user::Buffer()->xfer_handle = 0;
  const int64_t r = user::Call(static_cast<uint64_t>(h), m);
  Invoke(static_cast<uint64_t>(h), kOpClose);
  if (r < 0) Print("{}: failed: {}\r\n", what, user::ErrorName(r));
  return r >= 0;
}

// blk read N | blk write SECTOR PATTERN | blk fill SECTOR COUNT SEED (disk 0)
void Blk(const char* arg, size_t n) {
  size_t i = 0;
  const char* w[4];
  size_t wl[4];
  uint64_t v[3] = {};
  bool have[3] = {};
  wl[0] = Word(arg, n, &i, &w[0]);
  for (int k = 1; k < 4; ++k) {
    wl[k] = Word(arg, n, &i, &w[k]);
    have[k - 1] = ParseU64(w[k], wl[k], &v[k - 1]);
  }
  const bool read = user::StrEq(w[0], wl[0], "read") && have[0];
  const bool write = user::StrEq(w[0], wl[0], "write") && have[0] && wl[2] != 0;
  const bool fill = user::StrEq(w[0], wl[0], "fill") && have[0] && have[1] && have[2];
  if (!read && !write && !fill) {
    Out("usage: blk read N | blk write SECTOR TEXT | blk fill SECTOR COUNT SEED\r\n");
    return;
  }
  const int64_t h = Virtio();
  if (h < 0) return;
  user::Msg m;
  abi::IpcBuffer* b = user::Buffer();
  if (read) {
    if (v[0] == 0) v[0] = 1;
    m.tag = MakeTag(virtio::kBlkChecksum);
    m.w[0] = 0;
    m.w[1] = 0;
    m.w[2] = v[0];
  } else if (write) {
    const size_t start = static_cast<size_t>(w[2] - arg);
    const size_t plen = n - start > 512 ? 512 : n - start;
    for (size_t k = 0; k < plen; ++k) b->data[k] = static_cast<uint8_t>(arg[start + k]);
    m.tag = MakeTag(virtio::kBlkWrite, plen);
    m.w[0] = 0;
    m.w[1] = v[0];
  } else {
    m.tag = MakeTag(virtio::kBlkFill);
    m.w[0] = 0;
    m.w[1] = v[0];
    m.w[2] = v[1];
    m.w[3] = v[2];
  }
  if (!CallService("blk", h, &m)) return;
  if (read) {
    const virtio::ChecksumReply r = virtio::UnpackChecksumReply(m.w);
    if (r.status != 0) {
      Print("blk: read failed: status {}\r\n", static_cast<int64_t>(r.status));
      return;
    }
    uint8_t first[16];
    for (size_t k = 0; k < sizeof(first); ++k) first[k] = b->data[k];  // Print may reuse it
    Print("blk: {} sectors of {} fnv1a {:#x}; sector 0: ", v[0], r.capacity, r.checksum);
    Hex(first, sizeof(first));
    Out("\r\n");
  } else {
    const virtio::WriteReply r = virtio::UnpackWriteReply(m.w);
    if (write) {
      Print("blk: wrote sector {}: status {}, flush {}\r\n", v[0], static_cast<int64_t>(r.status),
            static_cast<int64_t>(r.flush_status));
    } else {
      Print("blk: filled sectors {}+{} seed {}: status {}, flush {}\r\n", v[0], v[1], v[2],
            static_cast<int64_t>(r.status), static_cast<int64_t>(r.flush_status));
    }
  }
}

// Prints v / 10 with one decimal.
void Tenths(uint64_t v) { Print("{}.{}", v / 10, v % 10); }

// blkbench seq-read|seq-write|rand-read [AMOUNT] [REQ_KIB] [DEPTH]: AMOUNT is
// KiB for the sequential modes (default 4096), reads for rand-read (200).
void BlkBench(const char* arg, size_t n) {
  size_t i = 0;
  const char* w;
  const size_t ml = Word(arg, n, &i, &w);
  constexpr uint64_t kNoMode = 3;
  uint64_t mode = kNoMode;
  if (user::StrEq(w, ml, "seq-read")) mode = virtio::kBenchSeqRead;
  if (user::StrEq(w, ml, "seq-write")) mode = virtio::kBenchSeqWrite;
  if (user::StrEq(w, ml, "rand-read")) mode = virtio::kBenchRandRead;
  const bool rand_read = mode == virtio::kBenchRandRead;
  uint64_t v[3] = {rand_read ? 200u : 4096u, 64, 4};
  for (int k = 0; k < 3; ++k) {
    const size_t l = Word(arg, n, &i, &w);
    if (l != 0 && !ParseU64(w, l, &v[k])) mode = kNoMode;
  }
  if (mode == kNoMode || v[0] == 0 || v[2] == 0 || v[2] > 4) {
    Out("usage: blkbench seq-read|seq-write|rand-read [KIB|READS] [REQ_KIB] [DEPTH 1..4]\r\n");
    return;
  }
  const int64_t h = Virtio();
  if (h < 0) return;
  user::Msg m;
  m.tag = MakeTag(virtio::kBlkBench);
  m.w[0] = virtio::PackBenchRequest({0, mode, v[2]});
  m.w[1] = rand_read ? v[0] : v[0] * 1024;
  m.w[2] = v[1] * 1024;
  if (!CallService("blkbench", h, &m)) return;
  const virtio::BenchReply r = virtio::UnpackBenchReply(m.w);
  if (r.status != 0) {
    Print("blkbench: failed: status {}\r\n", static_cast<int64_t>(r.status));
    return;
  }
  const uint64_t us = r.us == 0 ? 1 : r.us, reqs = r.done;
  const uint64_t req = rand_read ? 4096 : v[1] * 1024;
  static const char* const kModes[] = {"seq-read", "seq-write", "rand-read"};
  Print("blkbench: {} {} requests of {} KiB, depth {}: {} us, ", kModes[mode], reqs, req / 1024,
        v[2], us);
  Tenths(reqs * req * 10 / us);
  Out(" MB/s, ");
  Tenths(reqs * 10000000 / us);
  Print(" IOPS; {} virtqueue requests in {} notifies\r\n", r.virtqueue_requests, r.notifies);
}

// vcon write TEXT... | vcon read | vcon (counters): the virtio console
// (--console on vmm) as seen from this shell.
void Vcon(const char* arg, size_t n) {
  size_t i = 0;
  const char* w;
  const size_t wl = Word(arg, n, &i, &w);
  const bool write = user::StrEq(w, wl, "write"), read = user::StrEq(w, wl, "read");
  if (wl != 0 && !write && !read) {
    Out("usage: vcon write TEXT... | vcon read | vcon\r\n");
    return;
  }
  const int64_t h = Service("virtio");
  if (h < 0) {
    Print("vcon: no driver ({}); start vmm with --console\r\n", user::ErrorName(h));
    return;
  }
  abi::IpcBuffer* b = user::Buffer();
  user::Msg m;
  if (write) {
    while (i < n && arg[i] == ' ') ++i;
    size_t len = n - i;
    if (len > kIpcDataMax - 1) len = kIpcDataMax - 1;
    for (size_t k = 0; k < len; ++k) b->data[k] = static_cast<uint8_t>(arg[i + k]);
    b->data[len] = '\n';  // a line, as echo would write it
    m.tag = MakeTag(virtio::kConWrite, len + 1);
  } else if (read) {
    m.tag = MakeTag(virtio::kConRead);
    m.w[0] = 200;
  } else {
    m.tag = MakeTag(virtio::kConCounters);
  }
  if (!CallService("vcon", h, &m)) return;
  const int64_t st = static_cast<int64_t>(m.w[0]);
  if (st < 0) {
    Print("vcon: {}\r\n", st == kErrNotFound ? "no virtio console (start vmm with --console)"
                                             : user::ErrorName(st));
  } else if (write) {
    Print("vcon: wrote {} bytes\r\n", m.w[0]);
  } else if (read) {
    // Printable bytes as they are, anything else as '.', on one line.
    char text[200];
    const size_t got = TagLen(m.tag) < sizeof(text) ? TagLen(m.tag) : sizeof(text);
    for (size_t k = 0; k < got; ++k) {
      const char c = static_cast<char>(b->data[k]);
      text[k] = c >= 0x20 && c < 0x7f ? c : '.';
    }
    Print("vcon: read {} bytes: ", got);
    Out(text, got);
    Out("\r\n");
  } else {
    const virtio::ConsoleCounters c = virtio::UnpackConsoleCounters(m.w);
    Print("vcon: {} bytes in, {} bytes out, {} buffered ({} ring-full stalls); ", c.bytes_in,
          c.bytes_out, c.buffered, c.full_stalls);
    Print("{} interrupts, {} bad used entries, ", c.irqs, c.bad_used);
    Print("{} transmit timeouts\r\n", c.tx_timeouts);
  }
}

int64_t Files() {
  const int64_t h = Service("files");
  if (h < 0) Print("files: no file service ({}); start vmm with --disk\r\n", user::ErrorName(h));
  return h;
}

void FsError(const char* what, int64_t st) { Print("{}: {}\r\n", what, files::ErrorText(st)); }

// ls: NAME SIZE fnv1a CHECKSUM per file, then a summary.
void Ls() {
  const int64_t h = Files();
  if (h < 0) return;
  abi::IpcBuffer* b = user::Buffer();
  uint64_t count = 0;
  for (uint64_t i = 0;; ++i) {
    user::Msg m;
    m.tag = MakeTag(files::kList);
    m.w[0] = i;
    b->xfer_handle = 0;
    if (user::Call(static_cast<uint64_t>(h), &m) < 0) break;
    const int64_t st = static_cast<int64_t>(m.w[0]);
    if (st == kErrNotFound) break;
    if (st != 0) {
      FsError("ls", st);
      Invoke(static_cast<uint64_t>(h), kOpClose);
      return;
    }
    Out(reinterpret_cast<const char*>(b->data), TagLen(m.tag));
    Print(" {} fnv1a {:#010x}\r\n", m.w[1], m.w[3]);
    ++count;
  }
  user::Msg m;
  m.tag = MakeTag(files::kInfo);
  if (CallService("ls", h, &m) && m.w[0] == 0)
    Print("ls: {} files, {} KiB free of {} KiB\r\n", count, m.w[2] / 2, m.w[3] / 2);
}

// Puts a name into the IPC buffer; false (and a message) if it is too long.
bool PutName(const char* what, const char* name, size_t len) {
  if (len == 0 || len > 31) {
    Print("{}: a name is 1..31 characters\r\n", what);
    return false;
  }
  for (size_t k = 0; k < len; ++k) user::Buffer()->data[k] = static_cast<uint8_t>(name[k]);
  return true;
}

// cat NAME (print) or cksum NAME (FNV-1a of the bytes received).
void Cat(const char* arg, size_t n, bool print) {
  size_t i = 0;
  const char* name;
  const size_t nl = Word(arg, n, &i, &name);
  const char* what = print ? "cat" : "cksum";
  if (!PutName(what, name, nl)) return;
  const int64_t h = Files();
  if (h < 0) return;
  abi::IpcBuffer* b = user::Buffer();
  uint64_t off = 0, size = 0;
  uint32_t hash = VMMFS_FNV_INIT;
  uint8_t last = '\n';
  do {
    PutName(what, name, nl);
    user::Msg m;
    m.tag = MakeTag(files::kRead, nl);
    m.w[0] = off;
    b->xfer_handle = 0;
    const int64_t r = user::Call(static_cast<uint64_t>(h), &m);
    const int64_t st = r < 0 ? r : static_cast<int64_t>(m.w[0]);
    if (st != 0) {
      FsError(what, st);
      break;
    }
    size = m.w[1];
    const uint64_t got = m.w[2];
    hash = vmmfs_fnv1a(hash, b->data, got);
    if (print && got != 0) {
      last = b->data[got - 1];
      Out(reinterpret_cast<const char*>(b->data), got);
    }
    off += got;
    if (got == 0) break;
  } while (off < size);
  Invoke(static_cast<uint64_t>(h), kOpClose);
  if (print && last != '\n') Out("\r\n");
  if (!print && off == size) Print("cksum: {} bytes fnv1a {:#010x}\r\n", size, hash);
}

// write NAME TEXT / append NAME TEXT / rm NAME / sync
void FileOp(uint64_t label, const char* what, const char* arg, size_t n) {
  size_t i = 0;
  const char* name;
  const size_t nl = Word(arg, n, &i, &name);
  if (label != files::kSync && (nl == 0 || nl > 31)) {
    Print("{}: a name is 1..31 characters\r\n", what);
    return;
  }
  const int64_t h = Files();  // before the buffer is filled: LookUp uses it
  if (h < 0) return;
  if (label != files::kSync) PutName(what, name, nl);
  size_t len = nl;
  if (label == files::kWrite || label == files::kAppend) {
    while (i < n && arg[i] == ' ') ++i;
    const size_t text = n - i;
    abi::IpcBuffer* b = user::Buffer();
    for (size_t k = 0; k < text; ++k) b->data[nl + k] = static_cast<uint8_t>(arg[i + k]);
    b->data[nl + text] = '\n';  // a line, as echo > NAME would write it
    len = nl + text + 1;
  }
  user::Msg m;
  m.tag = MakeTag(label, label == files::kSync ? 0 : len);
  m.w[0] = nl;
  if (!CallService(what, h, &m)) return;
  const int64_t st = static_cast<int64_t>(m.w[0]);
  if (st != 0) {
    FsError(what, st);
  } else if (label == files::kSync) {
    Out("sync: ok\r\n");
  } else if (label == files::kDelete) {
    Out("rm: ok\r\n");
  } else {
    Print("{}: {} bytes\r\n", what, len - nl);
  }
}

void Help() {
  Out("commands:\r\n"
      "  help            this list\r\n"
      "  ps              processes\r\n"
      "  tokens          this shell's token table\r\n"
      "  echo TEXT       TEXT through the echo service (IPC) and back\r\n"
      "  ipcbench [N]    N Call/ReplyRecv round trips to echo (default 1000): median cycles\r\n"
      "  test            the IPC self-tests (uipc)\r\n"
      "  mem             free and total memory\r\n"
      "  sum [N]         reads N bytes (or lines up to a line '.') unechoed: count, FNV-1a\r\n"
      "  crash           asks echo to fault: init reports and restarts it\r\n"
      "  uptime          the kernel clock\r\n"
      "  rng [N]         N (<= 64, default 16) bytes from virtio-rng (--rng)\r\n"
      "  blk read N      FNV-1a of sectors 0..N-1 of the first virtio-blk disk\r\n"
      "  blk write S P   fills sector S with the text P repeated, then FLUSH\r\n"
      "  blk fill S N X  writes sectors S..S+N-1 with a pattern (seed X), then FLUSH\r\n"
      "  blkbench M [A] [R] [D]  M = seq-read|seq-write|rand-read: MB/s, IOPS (seq-write\r\n"
      "                  overwrites the disk from sector 0)\r\n"
      "  virtio          driver counters: completions after an IRQ / a timeout\r\n"
      "  vcon write TEXT the line TEXT to the virtio console (--console)\r\n"
      "  vcon read       input that arrived on the virtio console (up to 200 bytes)\r\n"
      "  vcon            virtio console counters\r\n"
      "  ls              files on the vmmfs disk (NAME SIZE checksum)\r\n"
      "  cat NAME        prints a file\r\n"
      "  cksum NAME      FNV-1a of a file as read\r\n"
      "  write NAME TEXT creates or replaces a file with the line TEXT\r\n"
      "  append NAME TEXT adds the line TEXT to a file\r\n"
      "  rm NAME         deletes a file\r\n"
      "  sync            flushes the disk\r\n"
      "  poweroff N      ends the machine with status N (0..63)\r\n");
}

void Ps() {
  char line[128];
  for (uint64_t i = 0;; ++i) {
    const int64_t n =
        Invoke(kCtl, kOpProcessInfo, i, reinterpret_cast<uint64_t>(line), sizeof(line));
    if (n <= 0) break;
    Out(line, static_cast<size_t>(n));
    Out("\r\n", 2);
  }
}

void Tokens() {
  static const char* const kTypes[] = {"none",   "control", "endpoint", "notification", "process",
                                       "frames", "mmio",    "irq",      "ports"};
  for (uint64_t i = 0; i < 64; ++i) {
    uint64_t word = 0;
    const int64_t h = Invoke(kSelfHandle, kOpListTokens, i, 0, 0, &word);
    if (h <= 0) continue;
    const uint64_t type = word & 0xff;
    Print("  handle {:#x}: {} rights {:#x}{}{}\r\n", h, type < 9 ? kTypes[type] : "?",
          (word >> 8) & 0xffffffff, (word >> 40) & 1 ? " badged" : "",
          (word >> 41) & 1 ? " (revoked or expired)" : "");
  }
}

void Echo(const char* text, size_t len) {
  const int64_t h = LookUp("echo");
  if (h < 0) {
    Print("echo: no echo service: {}\r\n", user::ErrorName(h));
    return;
  }
  abi::IpcBuffer* b = user::Buffer();
  if (len > kIpcDataMax) len = kIpcDataMax;
  for (size_t i = 0; i < len; ++i) b->data[i] = static_cast<uint8_t>(text[i]);
  user::Msg m;
  m.tag = MakeTag(1, len);
  const int64_t r = user::Call(static_cast<uint64_t>(h), &m);
  Invoke(static_cast<uint64_t>(h), kOpClose);
  if (r < 0) {
    Print("echo: {}\r\n", user::ErrorName(r));
    return;
  }
  Out(reinterpret_cast<const char*>(b->data), TagLen(m.tag));
  Out("\r\n", 2);
}

void IpcBench(uint64_t n) {
  if (n == 0) n = 1000;
  if (n > 100000) n = 100000;
  const int64_t h = LookUp("echo");
  if (h < 0) {
    Print("ipcbench: no echo service: {}\r\n", user::ErrorName(h));
    return;
  }
  uint64_t hz = 0;
  Invoke(kCtl, kOpClock, 0, 0, 0, &hz);
  const uint64_t mhz = hz / 1000000;
  uint64_t* s = reinterpret_cast<uint64_t*>(g_heap);
  uint64_t check = 0;
  for (uint64_t i = 0; i < n; ++i) {
    user::Msg m;
    m.w[0] = i;
    const uint64_t t0 = user::Rdtsc();
    user::Call(static_cast<uint64_t>(h), &m);
    const uint64_t t1 = user::Rdtsc();
    s[i] = t1 - t0;
    check += m.w[0];
  }
  Invoke(static_cast<uint64_t>(h), kOpClose);
  const uint64_t med = Median(s, n);
  Print(
      "ipcbench: {} round trips (Call + ReplyRecv, one word, shell <-> echo, 2 address spaces)\r\n",
      n);
  Print("ipcbench: median {} cycles ({} ns at {} MHz), min {}, max {}; checksum {}\r\n", med,
        mhz != 0 ? med * 1000 / mhz : 0, mhz, s[0], s[n - 1],
        check == n * (n - 1) / 2 ? "ok" : "BAD");
}

void Sum(const char* arg, size_t len) {
  uint64_t want = 0;
  const bool by_count = ParseU64(arg, len, &want);
  uint32_t hash = VMMFS_FNV_INIT;
  uint64_t count = 0;
  const int64_t t0 = Invoke(kCtl, kOpClock);
  if (by_count) {
    for (; count < want; ++count) {
      const char c = GetChar();
      hash = vmmfs_fnv1a(hash, &c, 1);
    }
  } else {
    // Lines until a line that is exactly "."; every byte counts, the
    // terminator line does not.
    char last[2] = {'\n', 0};
    for (;;) {
      const char c = GetChar();
      if (last[0] == '\n' && c == '.') {
        const char d = GetChar();
        if (d == '\n' || d == '\r') {
          if (d == '\r' && g_in_pos < g_in_len && g_in[g_in_pos] == '\n') ++g_in_pos;
          break;
        }
        const char both[2] = {c, d};
        hash = vmmfs_fnv1a(hash, both, 2);
        count += 2;
        last[0] = d;
        continue;
      }
      hash = vmmfs_fnv1a(hash, &c, 1);
      ++count;
      last[0] = c;
    }
  }
  const int64_t ms = (Invoke(kCtl, kOpClock) - t0) / 1000;
  Print("sum: {} bytes fnv1a {:#010x} in {} ms\r\n", count, hash, ms);
}

void RunTests() {
  const int64_t p = user::Spawn(kCtl, "uipc", 100);
  if (p < 0) {
    Print("test: {}\r\n", user::ErrorName(p));
    return;
  }
  Invoke(static_cast<uint64_t>(p), kOpGive, kCtl, kRightsAll);
  Invoke(static_cast<uint64_t>(p), kOpStart, 200);
  const int64_t code = Invoke(static_cast<uint64_t>(p), kOpWait);
  Invoke(static_cast<uint64_t>(p), kOpClose);
  Print("test: uipc {} (exit code {:#x})\r\n", code == 0 ? "passed" : "FAILED", code);
}

void Execute(const char* line, size_t n) {
  size_t i = 0;
  while (i < n && line[i] == ' ') ++i;
  size_t cmd_end = i;
  while (cmd_end < n && line[cmd_end] != ' ') ++cmd_end;
  const char* cmd = line + i;
  const size_t cmd_len = cmd_end - i;
  size_t a = cmd_end;
  while (a < n && line[a] == ' ') ++a;
  const char* arg = line + a;
  const size_t arg_len = n - a;
  uint64_t v = 0;
  if (cmd_len == 0) return;
  if (user::StrEq(cmd, cmd_len, "help")) {
    Help();
  } else if (user::StrEq(cmd, cmd_len, "ps")) {
    Ps();
  } else if (user::StrEq(cmd, cmd_len, "tokens")) {
    Tokens();
  } else if (user::StrEq(cmd, cmd_len, "echo")) {
    Echo(arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "ipcbench")) {
    IpcBench(ParseU64(arg, arg_len, &v) ? v : 1000);
  } else if (user::StrEq(cmd, cmd_len, "test")) {
    RunTests();
  } else if (user::StrEq(cmd, cmd_len, "mem")) {
    uint64_t total = 0;
    const int64_t free = Invoke(kCtl, kOpMemInfo, 0, 0, 0, &total);
    Print("mem: {} KiB free of {} KiB\r\n", static_cast<uint64_t>(free) * 4, total * 4);
  } else if (user::StrEq(cmd, cmd_len, "sum")) {
    Sum(arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "crash")) {
    const int64_t h = LookUp("echo");
    user::Msg m;
    m.tag = MakeTag(99);
    const int64_t r = h > 0 ? user::Call(static_cast<uint64_t>(h), &m) : h;
    if (h > 0) Invoke(static_cast<uint64_t>(h), kOpClose);
    Print("crash: echo answered {}\r\n", r == kErrPeerGone ? "peer gone" : user::ErrorName(r));
  } else if (user::StrEq(cmd, cmd_len, "uptime")) {
    const int64_t us = Invoke(kCtl, kOpClock);
    Print("uptime: {} ms\r\n", us / 1000);
  } else if (user::StrEq(cmd, cmd_len, "rng")) {
    Rng(ParseU64(arg, arg_len, &v) ? v : 16);
  } else if (user::StrEq(cmd, cmd_len, "blk")) {
    Blk(arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "blkbench")) {
    BlkBench(arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "virtio")) {
    const int64_t h = Virtio();
    user::Msg m;
    m.tag = MakeTag(virtio::kCounters);
    if (h > 0 && CallService("virtio", h, &m)) {
      const virtio::DriverCounters c = virtio::UnpackDriverCounters(m.w);
      Print("virtio: {} completions: {} after an IRQ, {} after a timeout; ", c.completions,
            c.by_irq, c.by_timeout);
      Print("{} timeouts, {} spurious wake-ups, {} interrupt acks\r\n", c.timeouts, c.spurious,
            c.acks);
    }
  } else if (user::StrEq(cmd, cmd_len, "vcon")) {
    Vcon(arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "ls")) {
    Ls();
  } else if (user::StrEq(cmd, cmd_len, "cat")) {
    Cat(arg, arg_len, true);
  } else if (user::StrEq(cmd, cmd_len, "cksum")) {
    Cat(arg, arg_len, false);
  } else if (user::StrEq(cmd, cmd_len, "write")) {
    FileOp(files::kWrite, "write", arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "append")) {
    FileOp(files::kAppend, "append", arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "rm")) {
    FileOp(files::kDelete, "rm", arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "sync")) {
    FileOp(files::kSync, "sync", arg, arg_len);
  } else if (user::StrEq(cmd, cmd_len, "poweroff")) {
    if (!ParseU64(arg, arg_len, &v)) v = 0;
    const int64_t r = Invoke(kCtl, kOpPowerOff, v);
    Print("poweroff: {} (status 0..63)\r\n", user::ErrorName(r));
  } else {
    Print("unknown command: ");
    Out(cmd, cmd_len);
    Out(" (try help)\r\n");
  }
}

// sh=CMD;CMD from the kernel command line (',' = space).
void RunCmdline() {
  char text[512];
  const int64_t n = Invoke(kCtl, kOpCmdline, reinterpret_cast<uint64_t>(text), sizeof(text));
  if (n <= 0) return;
  const size_t len = static_cast<size_t>(n);
  for (size_t i = 0; i + 3 <= len; ++i) {
    if ((i != 0 && text[i - 1] != ' ') || text[i] != 's' || text[i + 1] != 'h' ||
        text[i + 2] != '=')
      continue;
    size_t start = i + 3;
    size_t end = start;
    while (end < len && text[end] != ' ') ++end;
    for (size_t k = start; k < end; ++k) {
      if (text[k] == ',') text[k] = ' ';
    }
    size_t s = start;
    for (size_t k = start; k <= end; ++k) {
      if (k == end || text[k] == ';') {
        Out("vmm> ");
        Out(text + s, k - s);
        Out("\r\n");
        Execute(text + s, k - s);
        s = k + 1;
      }
    }
    return;
  }
}

// Argument 1 (init, `vconsole=shell`): the shell of the virtio console.
int64_t VconMain() {
  const int64_t h = Service("virtio");
  abi::IpcBuffer* b = user::Buffer();
  b->xfer_handle = 0;
  user::Msg m;
  m.tag = MakeTag(virtio::kConAttach);
  const int64_t r = h < 0 ? h : user::Call(static_cast<uint64_t>(h), &m);
  const int64_t st = r < 0 ? r : static_cast<int64_t>(m.w[0]);
  if (st < 0 || b->xfer_handle == 0) {
    user::Print("[shell] no virtio console: {}\n", user::ErrorName(st));
    return 1;
  }
  g_notify = b->xfer_handle;
  g_vcon = static_cast<uint64_t>(h);
  user::Print("[shell] running on the virtio console too\n");  // COM1
  Out("[shell] ready on the virtio console, type help\r\n");
  char line[256];
  for (;;) {
    Out("vmm> ");
    const size_t len = ReadLine(line, sizeof(line));
    Execute(line, len);
  }
}

}  // namespace

extern "C" int64_t UserMain(uint64_t heap, uint64_t, uint64_t, uint64_t arg, uint64_t) {
  g_heap = heap;
  if (arg == 1) return VconMain();
  const int64_t n = Invoke(kCtl, kOpCreateNotification);
  if (n < 0 || Invoke(kCtl, kOpConsoleBind, static_cast<uint64_t>(n)) < 0) {
    Print("[shell] no console: {}\n", n);
    return 1;
  }
  g_notify = static_cast<uint64_t>(n);
  Out("[shell] ready, type help\r\n");
  RunCmdline();
  char line[256];
  for (;;) {
    Out("vmm> ");
    const size_t len = ReadLine(line, sizeof(line));
    Execute(line, len);
  }
}
