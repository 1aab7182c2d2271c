// ELF executable parsing and loading by physical address (System V gABI,
// "Object Files"; x86-64 psABI). Everything read from the file is validated:
// the image is untrusted input (docs/conventions.md: a libFuzzer target covers
// ParseElf).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"

namespace firmware {

// One PT_LOAD program header.
struct ElfSegment {
  uint32_t index = 0;  // program header index, for messages
  uint64_t offset = 0;
  uint64_t file_size = 0;
  uint64_t paddr = 0;
  uint64_t vaddr = 0;
  uint64_t mem_size = 0;
  uint32_t flags = 0;  // PF_X | PF_W | PF_R
};

struct ElfImage {
  bool is64 = false;   // ELFCLASS64 (x86-64) or ELFCLASS32 (i386)
  bool dyn = false;    // ET_DYN (position-independent); only with ParseElf(..., allow_dyn)
  uint64_t entry = 0;  // e_entry
  std::vector<ElfSegment> loads;
  // XEN_ELFNOTE_PHYS32_ENTRY (Xen public/elfnote.h, type 18) from a PT_NOTE:
  // the 32-bit PVH entry point, when the image has one.
  std::optional<uint32_t> pvh_entry;
  uint64_t lowest = 0;   // min p_paddr over PT_LOADs with memory
  uint64_t highest = 0;  // max p_paddr + p_memsz
  // The PT_DYNAMIC segment (its file range and p_vaddr), when there is one.
  std::optional<ElfSegment> dynamic;
};

// Which classes ParseElf accepts.
enum class ElfClass { kAny, k64, k32 };

// True when the bytes start with the ELF magic.
bool LooksLikeElf(std::span<const uint8_t> file);

// Validates the ELF header, the program header table, every PT_LOAD's file
// range and sizes, and PT_NOTEs (looking for the PVH entry). `name` is the
// file name used in messages. Errors are kBadImage, e.g.
// "kernel image /x/y.elf: program header 3 lies outside the file (...)".
// Needs at least one PT_LOAD with memory. ET_EXEC only, unless `allow_dyn`
// (the Limine protocol loads position-independent executables too).
[[nodiscard]] base::Result<ElfImage> ParseElf(std::span<const uint8_t> file, std::string_view name,
                                              ElfClass want = ElfClass::kAny,
                                              bool allow_dyn = false);

// Checks that every segment lies in guest RAM, at or above `floor`
// (kBootStructuresEnd for the protocols with fixed boot structures, 0 for
// those that move theirs out of a low kernel's way) and outside the legacy
// area, then copies the file part to p_paddr and zeroes the rest
// (p_memsz - p_filesz). kBadImage naming the segment otherwise.
[[nodiscard]] base::Result<void> LoadElfSegments(const base::GuestMemory& memory,
                                                 std::span<const uint8_t> file,
                                                 const ElfImage& image, std::string_view name,
                                                 uint64_t floor = base::kBootStructuresEnd);

// Checks that `entry` lies inside a loaded executable (PF_X) segment, by
// physical address. `what` names the entry in messages ("e_entry", "PVH entry").
[[nodiscard]] base::Result<void> CheckEntryInExecutableSegment(const ElfImage& image,
                                                               uint64_t entry,
                                                               std::string_view what,
                                                               std::string_view name);

}  // namespace firmware
