#include "kernel/elf.h"

namespace kernel {
namespace {

uint64_t Load(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// gABI constants.
constexpr uint8_t kElfClass64 = 2;
constexpr uint8_t kElfData2Lsb = 1;
constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPfX = 1, kPfW = 2, kPfR = 4;
constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;

}  // namespace

const char* ParseUserElf(const uint8_t* data, size_t size, uint64_t user_top, ElfProgram* out) {
  if (data == nullptr || size < kEhdrSize) return "file shorter than the ELF header";
  if (data[0] != 0x7f || data[1] != 'E' || data[2] != 'L' || data[3] != 'F') return "bad magic";
  if (data[4] != kElfClass64) return "not ELFCLASS64";
  if (data[5] != kElfData2Lsb) return "not little-endian";
  if (Load(data + 16, 2) != kEtExec) return "not an executable (ET_EXEC)";
  if (Load(data + 18, 2) != kEmX86_64) return "not x86-64";
  const uint64_t phoff = Load(data + 32, 8);
  const uint64_t phentsize = Load(data + 54, 2);
  const uint64_t phnum = Load(data + 56, 2);
  if (phentsize != kPhdrSize) return "unexpected program header size";
  if (phoff > size || phnum * kPhdrSize > size - phoff) return "program headers outside the file";
  out->entry = Load(data + 24, 8);
  out->segment_count = 0;
  bool entry_ok = false;
  for (uint64_t i = 0; i < phnum; ++i) {
    const uint8_t* ph = data + phoff + i * kPhdrSize;
    if (Load(ph, 4) != kPtLoad) continue;
    const uint64_t flags = Load(ph + 4, 4);
    ElfSegment s;
    s.file_offset = Load(ph + 8, 8);
    s.vaddr = Load(ph + 16, 8);
    s.file_size = Load(ph + 32, 8);
    s.mem_size = Load(ph + 40, 8);
    s.read = (flags & kPfR) != 0;
    s.write = (flags & kPfW) != 0;
    s.exec = (flags & kPfX) != 0;
    if (s.mem_size == 0) continue;
    if (s.file_size > s.mem_size) return "segment file size exceeds memory size";
    if (s.file_offset > size || s.file_size > size - s.file_offset)
      return "segment outside the file";
    if (s.vaddr >= user_top || s.mem_size > user_top - s.vaddr) return "segment outside user space";
    if (s.vaddr < 0x1000) return "segment maps page 0";
    if (s.write && s.exec) return "segment both writable and executable";
    for (size_t j = 0; j < out->segment_count; ++j) {
      const ElfSegment& o = out->segments[j];
      // Overlap at page granularity: two segments may not share a page.
      const uint64_t a0 = s.vaddr & ~0xfffull, a1 = (s.vaddr + s.mem_size + 0xfff) & ~0xfffull;
      const uint64_t b0 = o.vaddr & ~0xfffull, b1 = (o.vaddr + o.mem_size + 0xfff) & ~0xfffull;
      if (a0 < b1 && b0 < a1) return "segments share a page";
    }
    if (out->segment_count == ElfProgram::kMaxSegments) return "too many segments";
    out->segments[out->segment_count++] = s;
    if (s.exec && out->entry >= s.vaddr && out->entry - s.vaddr < s.mem_size) entry_ok = true;
  }
  if (out->segment_count == 0) return "no loadable segment";
  if (!entry_ok) return "entry point outside every executable segment";
  return nullptr;
}

}  // namespace kernel
