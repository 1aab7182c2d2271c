// libFuzzer entry point for everything in firmware/ that parses a kernel
// image: ELF (32/64, PT_NOTE/PVH, section headers), bzImage setup header,
// multiboot header and address fields, multiboot2 header tags. A kernel image is untrusted input
// (docs/conventions.md): no input may crash, hang, or write outside guest RAM.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "base/guest_memory.h"
#include "firmware/bzimage.h"
#include "firmware/elf.h"
#include "firmware/multiboot.h"
#include "firmware/multiboot2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<base::GuestMemory> memory = [] {
    auto created = base::GuestMemory::Create(64 * base::MiB);
    if (!created) __builtin_trap();
    return std::move(*created);
  }();
  const std::span<const uint8_t> file(data, size);
  constexpr std::string_view kName = "fuzz";

  if (auto elf = firmware::ParseElf(file, kName)) {
    if (firmware::CheckEntryInExecutableSegment(*elf, elf->entry, "e_entry", kName)) {
      (void)firmware::LoadElfSegments(*memory, file, *elf, kName);
    }
    if (elf->pvh_entry) {
      (void)firmware::CheckEntryInExecutableSegment(*elf, *elf->pvh_entry, "PVH entry", kName);
    }
  }
  if (auto header = firmware::ParseBzImage(file, kName)) {
    // What BootBzImage relies on.
    if (header->setup_size >= size || header->header_end > size) __builtin_trap();
    if (header->load_end() < header->load_address()) __builtin_trap();
  }
  if (auto multiboot = firmware::FindMultibootHeader(file, kName); multiboot && *multiboot) {
    if ((*multiboot)->flags & firmware::kMultibootAoutKludge) {
      (void)firmware::LoadMultibootKludge(*memory, file, **multiboot, kName);
    }
  }
  if (auto multiboot2 = firmware::FindMultiboot2Header(file, kName); multiboot2 && *multiboot2) {
    const auto& header = **multiboot2;
    if (header.offset + header.header_length > size) __builtin_trap();
  }
  if (auto sections = firmware::ReadElfSectionHeaders(file)) {
    if (sections->headers.size() != uint64_t{sections->num} * sections->entsize) __builtin_trap();
  }
  return 0;
}
