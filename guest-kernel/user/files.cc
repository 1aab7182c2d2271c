// files: the vmmfs file service (abi/vmmfs.h; docs/guest-drivers.md). Started
// by init with the virtio driver. Handles: 2 its endpoint (receive), 3 the
// name service (send), 4 a control token (memory).
//
// It allocates a 64 KiB DMA buffer, attaches it to the virtio driver
// (virtio::kAttach, the frames token by transfer) and moves sectors between
// virtio-blk disk 0 and that buffer with virtio::kBlkIo requests: the data never passes through an
// IPC message between the two. At start it reads the superblock and the
// directory and checks them (vmmfs_check_super, vmmfs_check_dir); a volume
// that fails is not mounted and every request answers kErrNoFs. File data is
// checked against its entry's checksum when read from offset 0.
//
// Writes go to a new extent (first fit, never over the old one), then FLUSH,
// then the one directory sector that holds the entry, then FLUSH: a crash in
// between leaves either the old file or the new one.
#include "abi/vmmfs.h"
#include "user/files_protocol.h"
#include "user/runtime.h"
#include "user/virtio_protocol.h"

namespace {

using namespace abi;
using user::Invoke;
using user::Print;
constexpr uint64_t kEp = 2, kNs = 3, kCtl = 4;
constexpr uint64_t kBufBytes = 64 * 1024;
constexpr uint64_t kBufVa = kUserMapBase + 0x4000000;

uint8_t* g_buf = nullptr;
uint64_t g_virtio = 0;
uint64_t g_buf_id = 0;
bool g_mounted = false, g_ro = false;
vmmfs_super g_sb;
vmmfs_entry g_dir[VMMFS_MAX_ENTRIES];
uint32_t g_slots = 0;  // directory slots: dir_sectors * 8

// lib/mem.cc's memcpy: one rep movsb (few instructions to emulate).
void Copy(void* dst, const void* src, size_t n) { __builtin_memcpy(dst, src, n); }

// Sectors between disk 0 and g_buf[offset..] (type virtio::kIoIn: to the
// buffer, kIoOut: to the disk): the driver's kBlkIo.
int64_t Io(uint64_t type, uint64_t sector, uint64_t count, uint64_t offset) {
  user::Msg m;
  m.tag = MakeTag(virtio::kBlkIo);
  m.w[0] = virtio::PackIoRequest({0, type, g_buf_id});
  m.w[1] = sector;
  m.w[2] = count;
  m.w[3] = offset;
  user::Buffer()->xfer_handle = 0;
  const int64_t r = user::Call(g_virtio, &m);
  return r < 0 || m.w[0] != 0 ? files::kErrIo : 0;
}

int64_t Flush() {
  user::Msg m;
  m.tag = MakeTag(virtio::kBlkFlush);
  const int64_t r = user::Call(g_virtio, &m);
  return r < 0 || m.w[0] != 0 ? files::kErrIo : 0;
}

int64_t LookUp(const char* name) { return user::LookUpName(kNs, name); }

// The driver registers shortly after boot (it runs first: higher priority).
bool Connect() {
  int64_t h = kErrNotFound;
  for (int i = 0; i < 100 && h == kErrNotFound; ++i) {
    h = LookUp("virtio");
    if (h == kErrNotFound) user::Yield();
  }
  if (h < 0) return false;
  g_virtio = static_cast<uint64_t>(h);
  uint64_t phys = 0;
  const int64_t fr = Invoke(kCtl, kOpAllocFrames, kBufBytes / 4096, 0, 0, &phys);
  if (fr < 0 || Invoke(static_cast<uint64_t>(fr), kOpMap, kBufVa, 1) < 0) return false;
  g_buf = reinterpret_cast<uint8_t*>(kBufVa);
  user::Msg m;
  m.tag = MakeTag(virtio::kAttach, 0, kXferCopy);
  user::Buffer()->xfer_handle = static_cast<uint64_t>(fr);
  if (user::Call(g_virtio, &m) < 0 || static_cast<int64_t>(m.w[0]) < 0) return false;
  g_buf_id = m.w[0];
  return true;
}

void Mount() {
  user::Msg m;
  m.tag = MakeTag(virtio::kBlkInfo);
  m.w[0] = 0;
  const int64_t r = user::Call(g_virtio, &m);
  const virtio::InfoReply info = virtio::UnpackInfoReply(m.w);
  if (r < 0 || info.status != 0) {
    Print("[files] no disk: not mounted\n");
    return;
  }
  const uint64_t capacity = info.capacity;
  g_ro = info.read_only != 0;
  if (capacity == 0 || Io(virtio::kIoIn, 0, 1, 0) != 0) {
    Print("[files] disk 0: cannot read the superblock\n");
    return;
  }
  Copy(&g_sb, g_buf, sizeof(g_sb));
  int problem = vmmfs_check_super(&g_sb, capacity);
  if (problem != VMMFS_OK) {
    Print("[files] disk 0: not mounted: {}\n", vmmfs_problem(problem));
    return;
  }
  if (Io(virtio::kIoIn, 1, g_sb.dir_sectors, 0) != 0) {
    Print("[files] disk 0: cannot read the directory\n");
    return;
  }
  g_slots = g_sb.dir_sectors * VMMFS_ENTRIES_PER_SECTOR;
  Copy(g_dir, g_buf, g_slots * sizeof(vmmfs_entry));
  uint32_t bad = 0;
  problem = vmmfs_check_dir(g_dir, g_slots, &g_sb, &bad);
  if (problem != VMMFS_OK) {
    Print("[files] disk 0: not mounted: directory entry {}: {}\n", bad, vmmfs_problem(problem));
    return;
  }
  g_mounted = true;
  uint64_t files = 0, used = 0;
  for (uint32_t i = 0; i < g_slots; ++i) {
    if (g_dir[i].name[0] == 0) continue;
    ++files;
    used += g_dir[i].alloc_sectors;
  }
  Print("[files] disk 0: vmmfs, {} files, {} KiB free{}\n", files,
        (g_sb.total_sectors - g_sb.data_start - used) / 2, g_ro ? ", read-only" : "");
}

// The slot holding `name` (n bytes), VMMFS_NO_ENTRY if none.
uint32_t FindEntry(const uint8_t* name, uint32_t n) {
  for (uint32_t i = 0; i < g_slots; ++i) {
    const vmmfs_entry& e = g_dir[i];
    if (e.name[0] == 0) continue;
    bool same = n <= VMMFS_NAME_MAX && (n == VMMFS_NAME_MAX || e.name[n] == 0);
    for (uint32_t k = 0; k < n && same; ++k) same = e.name[k] == static_cast<char>(name[k]);
    if (same) return i;
  }
  return VMMFS_NO_ENTRY;
}

uint32_t CheckName(const uint8_t* name, uint64_t n) {
  if (n == 0 || n > VMMFS_NAME_MAX) return 0;
  const uint32_t len = vmmfs_name_length(reinterpret_cast<const char*>(name), n);
  return len == n ? len : 0;
}

// Writes the directory sector holding slot i, then FLUSH.
int64_t StoreDirSector(uint32_t i) {
  const uint32_t sector = i / VMMFS_ENTRIES_PER_SECTOR;
  Copy(g_buf, &g_dir[sector * VMMFS_ENTRIES_PER_SECTOR], VMMFS_SECTOR);
  if (Io(virtio::kIoOut, 1 + sector, 1, 0) != 0) return files::kErrIo;
  return Flush();
}

// Reads file i's data into g_buf and checks its checksum.
int64_t LoadFile(uint32_t i) {
  const vmmfs_entry& e = g_dir[i];
  if (e.size > kBufBytes) return files::kErrTooBig;
  const uint64_t sectors = (e.size + VMMFS_SECTOR - 1) / VMMFS_SECTOR;
  if (sectors != 0 && Io(virtio::kIoIn, e.first_sector, sectors, 0) != 0) return files::kErrIo;
  if (vmmfs_fnv1a(VMMFS_FNV_INIT, g_buf, e.size) != e.data_checksum) return files::kErrCorrupt;
  return 0;
}

// Checks a file's data against its checksum, reading it in buffer-sized
// pieces (files may be larger than the buffer when made on the host).
int64_t VerifyFile(uint32_t i) {
  const vmmfs_entry& e = g_dir[i];
  uint32_t h = VMMFS_FNV_INIT;
  uint64_t done = 0;
  while (done < e.size) {
    uint64_t n = e.size - done < kBufBytes ? e.size - done : kBufBytes;
    if (Io(virtio::kIoIn, e.first_sector + done / VMMFS_SECTOR,
           (n + VMMFS_SECTOR - 1) / VMMFS_SECTOR, 0) != 0)
      return files::kErrIo;
    h = vmmfs_fnv1a(h, g_buf, n);
    done += n;
  }
  return h == e.data_checksum ? 0 : files::kErrCorrupt;
}

// Stores g_buf[0..size) as file `name` (create or replace).
int64_t WriteFile(const char* name, uint32_t name_len, uint64_t size) {
  if (g_ro) return files::kErrReadOnly;
  const uint64_t need = (size + VMMFS_SECTOR - 1) / VMMFS_SECTOR;
  const uint32_t old = FindEntry(reinterpret_cast<const uint8_t*>(name), name_len);
  uint32_t slot = old;
  for (uint32_t i = 0; i < g_slots && slot == VMMFS_NO_ENTRY; ++i) {
    if (g_dir[i].name[0] == 0) slot = i;
  }
  if (slot == VMMFS_NO_ENTRY) return files::kErrDirFull;
  const uint64_t first = vmmfs_find_free(g_dir, g_slots, &g_sb, need);
  if (first == 0) return files::kErrNoSpace;
  for (uint64_t i = size; i < need * VMMFS_SECTOR; ++i) g_buf[i] = 0;
  const uint32_t sum = vmmfs_fnv1a(VMMFS_FNV_INIT, g_buf, size);
  if (need != 0 && (Io(virtio::kIoOut, first, need, 0) != 0 || Flush() != 0)) return files::kErrIo;
  const vmmfs_entry saved = g_dir[slot];
  vmmfs_make_entry(&g_dir[slot], name, name_len, first, size, static_cast<uint32_t>(need), sum);
  const int64_t st = StoreDirSector(slot);
  if (st != 0) g_dir[slot] = saved;
  return st;
}

int64_t Delete(uint32_t i) {
  if (g_ro) return files::kErrReadOnly;
  const vmmfs_entry saved = g_dir[i];
  uint8_t* p = reinterpret_cast<uint8_t*>(&g_dir[i]);
  for (size_t k = 0; k < sizeof(vmmfs_entry); ++k) p[k] = 0;
  const int64_t st = StoreDirSector(i);
  if (st != 0) g_dir[i] = saved;
  return st;
}

// One request; m is the reply.
void Serve(user::Msg& m, uint64_t* len) {
  IpcBuffer* b = user::Buffer();
  const uint64_t label = TagLabel(m.tag);
  const uint64_t n = TagLen(m.tag);
  *len = 0;
  if (!g_mounted) {
    m.w[0] = static_cast<uint64_t>(files::kErrNoFs);
    return;
  }
  if (label == files::kList) {
    uint64_t want = m.w[0];
    for (uint32_t i = 0; i < g_slots; ++i) {
      if (g_dir[i].name[0] == 0 || want-- != 0) continue;
      const uint32_t nl = vmmfs_name_length(g_dir[i].name, sizeof(g_dir[i].name));
      Copy(b->data, g_dir[i].name, nl);
      *len = nl;
      m.w[0] = 0;
      m.w[1] = g_dir[i].size;
      m.w[2] = g_dir[i].first_sector;
      m.w[3] = g_dir[i].data_checksum;
      return;
    }
    m.w[0] = static_cast<uint64_t>(kErrNotFound);
  } else if (label == files::kRead || label == files::kDelete) {
    const uint32_t nl = CheckName(b->data, n);
    const uint32_t i = nl != 0 ? FindEntry(b->data, nl) : VMMFS_NO_ENTRY;
    if (nl == 0) {
      m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
    } else if (i == VMMFS_NO_ENTRY) {
      m.w[0] = static_cast<uint64_t>(kErrNotFound);
    } else if (label == files::kDelete) {
      m.w[0] = static_cast<uint64_t>(Delete(i));
    } else {
      const vmmfs_entry& e = g_dir[i];
      const uint64_t off = m.w[0];
      int64_t st = off == 0 ? VerifyFile(i) : 0;
      uint64_t got = 0;
      if (st == 0 && off < e.size) {
        got = e.size - off < kIpcDataMax ? e.size - off : kIpcDataMax;
        const uint64_t s0 = off / VMMFS_SECTOR;
        const uint64_t s1 = (off + got + VMMFS_SECTOR - 1) / VMMFS_SECTOR;
        st = Io(virtio::kIoIn, e.first_sector + s0, s1 - s0, 0);
        if (st == 0) Copy(b->data, g_buf + (off - s0 * VMMFS_SECTOR), got);
      }
      m.w[0] = static_cast<uint64_t>(st);
      m.w[1] = e.size;
      m.w[2] = st == 0 ? got : 0;
      *len = m.w[2];
    }
  } else if (label == files::kWrite || label == files::kAppend) {
    const uint64_t k = m.w[0];
    const uint32_t nl = k <= n ? CheckName(b->data, k) : 0;
    if (nl == 0) {
      m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
      return;
    }
    char name[VMMFS_NAME_MAX + 1] = {};
    Copy(name, b->data, nl);
    uint64_t size = 0;
    int64_t st = 0;
    if (label == files::kAppend) {
      const uint32_t i = FindEntry(b->data, nl);
      if (i != VMMFS_NO_ENTRY) {
        st = LoadFile(i);
        size = g_dir[i].size;
      }
    }
    if (st == 0 && size + (n - k) > kBufBytes) st = files::kErrTooBig;
    if (st == 0) {
      Copy(g_buf + size, b->data + k, n - k);
      st = WriteFile(name, nl, size + (n - k));
    }
    m.w[0] = static_cast<uint64_t>(st);
  } else if (label == files::kSync) {
    m.w[0] = static_cast<uint64_t>(Flush());
  } else if (label == files::kInfo) {
    uint64_t count = 0, used = 0;
    for (uint32_t i = 0; i < g_slots; ++i) {
      if (g_dir[i].name[0] == 0) continue;
      ++count;
      used += g_dir[i].alloc_sectors;
    }
    m.w[0] = 0;
    m.w[1] = count;
    m.w[2] = g_sb.total_sectors - g_sb.data_start - used;
    m.w[3] = g_sb.total_sectors;
  } else {
    m.w[0] = static_cast<uint64_t>(kErrInvalidArgument);
  }
}

}  // namespace

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  if (Connect()) {
    Mount();
  } else {
    Print("[files] no virtio driver or no DMA memory: not mounted\n");
  }
  IpcBuffer* buf = user::Buffer();
  if (user::RegisterName(kNs, "files", kEp) != 0) Print("[files] cannot register\n");
  user::Msg m;
  buf->xfer_handle = 0;
  user::Recv(kEp, &m);
  for (;;) {
    uint64_t len = 0;
    const uint64_t label = TagLabel(m.tag);
    Serve(m, &len);
    if (buf->xfer_handle != 0) {  // nothing is taken by transfer here
      Invoke(buf->xfer_handle, kOpClose);
      buf->xfer_handle = 0;
    }
    m.tag = MakeTag(label, len);
    user::ReplyRecv(kEp, &m);
  }
}
