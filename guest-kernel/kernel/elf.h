// Parser for user-program ELF64 images (System V gABI, x86-64 psABI).
// Validates everything before the kernel maps anything: magic, class,
// endianness, machine, type EXEC, program headers inside the file, segments
// inside the user half without overlap, file size <= memory size, no segment
// both writable and executable, entry inside an executable segment.
// Pure logic: host-tested.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel {

struct ElfSegment {
  uint64_t vaddr;
  uint64_t mem_size;
  uint64_t file_offset;
  uint64_t file_size;
  bool read, write, exec;
};

struct ElfProgram {
  static constexpr size_t kMaxSegments = 8;
  uint64_t entry = 0;
  ElfSegment segments[kMaxSegments] = {};
  size_t segment_count = 0;
};

// nullptr on success, else a static description of the first problem.
const char* ParseUserElf(const uint8_t* data, size_t size, uint64_t user_top, ElfProgram* out);

}  // namespace kernel
