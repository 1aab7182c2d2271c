/* vmmfs: the on-disk format of the bundled microkernel's file service.
 *
 * Shared, byte for byte, by the guest's `files` service
 * (guest-kernel/user/files.cc) and the host tool `vmmfs` (tools/vmmfs/).
 * The layout is documented in docs/guest-drivers.md, "The vmmfs format".
 * C-compatible (C99 or C++), depends on nothing but <stddef.h>/<stdint.h>,
 * so freestanding guest code and hosted code include the same file.
 *
 * A volume is a sequence of 512-byte sectors, all integers little-endian:
 *   sector 0                     superblock (struct vmmfs_super, rest zero)
 *   sectors 1 .. dir_sectors     directory: 8 entries of 64 bytes a sector
 *   sectors data_start .. total  file data, one contiguous extent a file
 * Checksums are 32-bit FNV-1a (vmmfs_fnv1a). Everything read from a disk is
 * checked with vmmfs_check_super / vmmfs_check_entry / vmmfs_check_dir
 * before it is used: a hostile image is refused, never followed. */
#ifndef GUEST_KERNEL_ABI_VMMFS_H_
#define GUEST_KERNEL_ABI_VMMFS_H_

#include <stddef.h>
#include <stdint.h>

#define VMMFS_MAGIC 0x53464d56u /* bytes 'V' 'M' 'F' 'S' at offset 0 */
#define VMMFS_VERSION 1u
#define VMMFS_SECTOR 512u
#define VMMFS_DIR_SECTORS 8u      /* what mkfs writes: 64 entries */
#define VMMFS_MAX_DIR_SECTORS 16u /* readers accept 1..16 */
#define VMMFS_ENTRY_SIZE 64u
#define VMMFS_ENTRIES_PER_SECTOR (VMMFS_SECTOR / VMMFS_ENTRY_SIZE)
#define VMMFS_MAX_ENTRIES (VMMFS_MAX_DIR_SECTORS * VMMFS_ENTRIES_PER_SECTOR)
#define VMMFS_NAME_MAX 31u /* name[32], NUL-terminated */
#define VMMFS_FNV_INIT 2166136261u
#define VMMFS_NO_ENTRY 0xffffffffu

/* Sector 0, bytes 0..63 (bytes 64..511 are zero). */
struct vmmfs_super {
  uint32_t magic;         /*  0: VMMFS_MAGIC */
  uint32_t version;       /*  4: VMMFS_VERSION */
  uint32_t sector_size;   /*  8: 512 */
  uint32_t dir_sectors;   /* 12: 1..VMMFS_MAX_DIR_SECTORS */
  uint64_t data_start;    /* 16: 1 + dir_sectors */
  uint64_t total_sectors; /* 24: sectors in the volume (<= the disk's) */
  uint32_t flags;         /* 32: 0 */
  uint32_t reserved[6];   /* 36: 0 */
  uint32_t checksum;      /* 60: FNV-1a of bytes 0..59 */
};

/* One directory slot. A slot whose name[0] is 0 is free (mkfs and rm write
 * all 64 bytes zero). */
struct vmmfs_entry {
  char name[32];          /*  0: 1..31 bytes of 0x21..0x7e but '/', then NULs */
  uint64_t first_sector;  /* 32: the extent's first sector (>= data_start) */
  uint64_t size;          /* 40: file length in bytes (<= alloc_sectors * 512) */
  uint32_t alloc_sectors; /* 48: the extent's length in sectors */
  uint32_t data_checksum; /* 52: FNV-1a of the file's `size` bytes */
  uint32_t flags;         /* 56: 0 */
  uint32_t checksum;      /* 60: FNV-1a of bytes 0..59 */
};

#ifdef __cplusplus
static_assert(sizeof(struct vmmfs_super) == 64, "vmmfs_super is 64 bytes");
static_assert(sizeof(struct vmmfs_entry) == 64, "vmmfs_entry is 64 bytes");
#else
_Static_assert(sizeof(struct vmmfs_super) == 64, "vmmfs_super is 64 bytes");
_Static_assert(sizeof(struct vmmfs_entry) == 64, "vmmfs_entry is 64 bytes");
#endif

/* Why a structure was refused (0: fine). vmmfs_problem() names each. */
enum vmmfs_problem_code {
  VMMFS_OK = 0,
  VMMFS_BAD_MAGIC = 1,
  VMMFS_BAD_VERSION = 2,
  VMMFS_BAD_SECTOR_SIZE = 3,
  VMMFS_BAD_DIR_SECTORS = 4,
  VMMFS_BAD_DATA_START = 5,
  VMMFS_BAD_TOTAL = 6, /* too small, or larger than the disk */
  VMMFS_BAD_SUPER_CHECKSUM = 7,
  VMMFS_BAD_NAME = 8,
  VMMFS_BAD_EXTENT = 9, /* before data_start or past the end */
  VMMFS_BAD_SIZE = 10,  /* size > alloc_sectors * 512 */
  VMMFS_BAD_FLAGS = 11,
  VMMFS_BAD_ENTRY_CHECKSUM = 12,
  VMMFS_DUPLICATE_NAME = 13,
  VMMFS_OVERLAP = 14, /* two extents share a sector */
  VMMFS_PROBLEM_COUNT = 15
};

static inline const char* vmmfs_problem(int code) {
  static const char* const kText[VMMFS_PROBLEM_COUNT] = {"ok",
                                                         "bad magic (not a vmmfs volume)",
                                                         "unsupported version",
                                                         "sector size is not 512",
                                                         "directory size out of range",
                                                         "data_start is not 1 + dir_sectors",
                                                         "total_sectors out of range",
                                                         "superblock checksum mismatch",
                                                         "bad file name",
                                                         "extent outside the data area",
                                                         "size larger than the extent",
                                                         "unknown flags",
                                                         "entry checksum mismatch",
                                                         "duplicate name",
                                                         "extents overlap"};
  return code >= 0 && code < VMMFS_PROBLEM_COUNT ? kText[code] : "unknown problem";
}

/* 32-bit FNV-1a, continued from h (start with VMMFS_FNV_INIT). */
static inline uint32_t vmmfs_fnv1a(uint32_t h, const void* data, size_t n) {
  const uint8_t* p = (const uint8_t*)data;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

static inline uint32_t vmmfs_super_checksum(const struct vmmfs_super* s) {
  return vmmfs_fnv1a(VMMFS_FNV_INIT, s, 60);
}
static inline uint32_t vmmfs_entry_checksum(const struct vmmfs_entry* e) {
  return vmmfs_fnv1a(VMMFS_FNV_INIT, e, 60);
}

/* Length of a valid name (1..31), or 0 if `name` (n bytes, NUL-terminated
 * within them or not) is not a valid file name. */
static inline uint32_t vmmfs_name_length(const char* name, size_t n) {
  size_t len = 0;
  while (len < n && name[len] != 0) {
    const unsigned char c = (unsigned char)name[len];
    if (c < 0x21 || c > 0x7e || c == '/') return 0;
    ++len;
  }
  if (len == 0 || len > VMMFS_NAME_MAX) return 0;
  return (uint32_t)len;
}

/* Checks a superblock against a disk of disk_sectors sectors. */
static inline int vmmfs_check_super(const struct vmmfs_super* s, uint64_t disk_sectors) {
  if (s->magic != VMMFS_MAGIC) return VMMFS_BAD_MAGIC;
  if (s->version != VMMFS_VERSION) return VMMFS_BAD_VERSION;
  if (s->sector_size != VMMFS_SECTOR) return VMMFS_BAD_SECTOR_SIZE;
  if (s->dir_sectors == 0 || s->dir_sectors > VMMFS_MAX_DIR_SECTORS) return VMMFS_BAD_DIR_SECTORS;
  if (s->data_start != 1u + (uint64_t)s->dir_sectors) return VMMFS_BAD_DATA_START;
  if (s->total_sectors < s->data_start || s->total_sectors > disk_sectors) return VMMFS_BAD_TOTAL;
  if (s->flags != 0) return VMMFS_BAD_FLAGS;
  if (s->checksum != vmmfs_super_checksum(s)) return VMMFS_BAD_SUPER_CHECKSUM;
  return VMMFS_OK;
}

/* Checks one used entry (name[0] != 0) against a checked superblock. */
static inline int vmmfs_check_entry(const struct vmmfs_entry* e, const struct vmmfs_super* s) {
  if (vmmfs_name_length(e->name, sizeof(e->name)) == 0) return VMMFS_BAD_NAME;
  for (size_t i = vmmfs_name_length(e->name, sizeof(e->name)); i < sizeof(e->name); ++i) {
    if (e->name[i] != 0) return VMMFS_BAD_NAME;
  }
  if (e->checksum != vmmfs_entry_checksum(e)) return VMMFS_BAD_ENTRY_CHECKSUM;
  if (e->flags != 0) return VMMFS_BAD_FLAGS;
  if (e->first_sector < s->data_start || e->first_sector > s->total_sectors ||
      e->alloc_sectors > s->total_sectors - e->first_sector)
    return VMMFS_BAD_EXTENT;
  if (e->size > (uint64_t)e->alloc_sectors * VMMFS_SECTOR) return VMMFS_BAD_SIZE;
  return VMMFS_OK;
}

/* Checks a whole directory (count slots): every used entry, no duplicate
 * names, no overlapping extents. On failure *bad is the slot at fault. */
static inline int vmmfs_check_dir(const struct vmmfs_entry* dir, uint32_t count,
                                  const struct vmmfs_super* s, uint32_t* bad) {
  for (uint32_t i = 0; i < count; ++i) {
    if (dir[i].name[0] == 0) continue;
    *bad = i;
    const int r = vmmfs_check_entry(&dir[i], s);
    if (r != VMMFS_OK) return r;
    for (uint32_t j = 0; j < i; ++j) {
      if (dir[j].name[0] == 0) continue;
      int same = 1;
      for (size_t k = 0; k < sizeof(dir[i].name) && same; ++k)
        same = dir[i].name[k] == dir[j].name[k];
      if (same) return VMMFS_DUPLICATE_NAME;
      const uint64_t a0 = dir[i].first_sector, a1 = a0 + dir[i].alloc_sectors;
      const uint64_t b0 = dir[j].first_sector, b1 = b0 + dir[j].alloc_sectors;
      if (a0 < b1 && b0 < a1) return VMMFS_OVERLAP;
    }
  }
  *bad = VMMFS_NO_ENTRY;
  return VMMFS_OK;
}

/* First fit: the lowest sector s >= data_start with [s, s + need) inside
 * the volume and overlapping no used extent. 0 (never a data sector) when
 * nothing fits. A zero-length file gets data_start and no sectors. */
static inline uint64_t vmmfs_find_free(const struct vmmfs_entry* dir, uint32_t count,
                                       const struct vmmfs_super* s, uint64_t need) {
  uint64_t at = s->data_start;
  if (need == 0) return at;
  for (;;) {
    if (need > s->total_sectors || at > s->total_sectors - need) return 0;
    uint64_t next = at;
    for (uint32_t i = 0; i < count; ++i) {
      if (dir[i].name[0] == 0 || dir[i].alloc_sectors == 0) continue;
      const uint64_t b0 = dir[i].first_sector, b1 = b0 + dir[i].alloc_sectors;
      if (b0 < at + need && at < b1 && b1 > next) next = b1;
    }
    if (next == at) return at;
    at = next;
  }
}

/* Fills a superblock for a volume of total_sectors sectors. */
static inline void vmmfs_make_super(struct vmmfs_super* s, uint64_t total_sectors) {
  uint8_t* p = (uint8_t*)s;
  for (size_t i = 0; i < sizeof(*s); ++i) p[i] = 0;
  s->magic = VMMFS_MAGIC;
  s->version = VMMFS_VERSION;
  s->sector_size = VMMFS_SECTOR;
  s->dir_sectors = VMMFS_DIR_SECTORS;
  s->data_start = 1u + VMMFS_DIR_SECTORS;
  s->total_sectors = total_sectors;
  s->checksum = vmmfs_super_checksum(s);
}

/* Fills a used entry (name already checked with vmmfs_name_length). */
static inline void vmmfs_make_entry(struct vmmfs_entry* e, const char* name, uint32_t name_len,
                                    uint64_t first, uint64_t size, uint32_t alloc,
                                    uint32_t data_checksum) {
  uint8_t* p = (uint8_t*)e;
  for (size_t i = 0; i < sizeof(*e); ++i) p[i] = 0;
  for (uint32_t i = 0; i < name_len && i < VMMFS_NAME_MAX; ++i) e->name[i] = name[i];
  e->first_sector = first;
  e->size = size;
  e->alloc_sectors = alloc;
  e->data_checksum = data_checksum;
  e->checksum = vmmfs_entry_checksum(e);
}

#endif /* GUEST_KERNEL_ABI_VMMFS_H_ */
