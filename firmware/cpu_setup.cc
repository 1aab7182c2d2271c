#include "firmware/cpu_setup.h"

#include <array>

#include "firmware/page_tables.h"

namespace firmware {
namespace {

base::Result<void> WriteGdtAndIdt(const base::GuestMemory& memory, uint64_t code_descriptor,
                                  uint64_t data_descriptor,
                                  const ProtectedModeLayout& layout = {}) {
  const std::array<uint64_t, kBootGdtEntries> gdt = {0, 0, code_descriptor, data_descriptor};
  TRY(memory.WriteObj(layout.gdt, gdt));
  // An IDT with limit 0: the first interrupt or exception triple-faults,
  // which the VMM reports (docs/architecture.md, status 80), instead of running
  // garbage.
  TRY(memory.WriteObj(layout.idt, uint64_t{0}));
  return {};
}

CpuBootState CommonState(uint64_t code_descriptor, uint64_t data_descriptor,
                         const ProtectedModeLayout& layout = {}) {
  CpuBootState state;
  state.cs = SegmentFromDescriptor(kBootCodeSelector, code_descriptor);
  const SegmentState data = SegmentFromDescriptor(kBootDataSelector, data_descriptor);
  state.ds = state.es = state.fs = state.gs = state.ss = data;
  state.gdt = {layout.gdt, static_cast<uint16_t>(kBootGdtEntries * 8 - 1)};
  state.idt = {layout.idt, 0};
  // There is no room for a TSS descriptor between the GDT and the IDT; TR
  // only has to be a usable busy TSS for VM entry (Intel SDM Vol. 3C
  // §27.3.1.2), and a kernel loads its own before it needs one. Base 0,
  // limit 0x67, busy is what the PVH ABI (Xen docs/misc/pvh.pandoc) asks.
  state.tr = {.base = 0, .limit = 0x67, .selector = 0, .type = 0xb, .present = 1};
  state.ldt = {.base = 0, .limit = 0xffff, .selector = 0, .type = 0x2, .present = 1};
  return state;
}

}  // namespace

SegmentState SegmentFromDescriptor(uint16_t selector, uint64_t descriptor) {
  SegmentState segment;
  segment.base = ((descriptor >> 16) & 0x00ffffff) | ((descriptor >> 32) & 0xff000000);
  uint32_t limit = static_cast<uint32_t>((descriptor & 0xffff) | ((descriptor >> 32) & 0xf0000));
  segment.g = static_cast<uint8_t>((descriptor >> 55) & 1);
  if (segment.g) limit = (limit << 12) | 0xfff;
  segment.limit = limit;
  segment.selector = selector;
  segment.type = static_cast<uint8_t>((descriptor >> 40) & 0xf);
  segment.s = static_cast<uint8_t>((descriptor >> 44) & 1);
  segment.dpl = static_cast<uint8_t>((descriptor >> 45) & 3);
  segment.present = static_cast<uint8_t>((descriptor >> 47) & 1);
  segment.avl = static_cast<uint8_t>((descriptor >> 52) & 1);
  segment.l = static_cast<uint8_t>((descriptor >> 53) & 1);
  segment.db = static_cast<uint8_t>((descriptor >> 54) & 1);
  segment.unusable = segment.present ? 0 : 1;
  return segment;
}

CpuBootState LongModeEntryState(std::span<const uint64_t> gdt, uint64_t gdt_address,
                                uint16_t code_selector, uint16_t data_selector, uint64_t cr3) {
  CpuBootState cpu;
  cpu.rflags = 0x2;
  cpu.cs = SegmentFromDescriptor(code_selector, gdt[code_selector / 8]);
  cpu.ds = cpu.es = cpu.fs = cpu.gs = cpu.ss =
      SegmentFromDescriptor(data_selector, gdt[data_selector / 8]);
  cpu.gdt = {gdt_address, static_cast<uint16_t>(gdt.size() * 8 - 1)};
  cpu.idt = {0, 0};
  cpu.tr = {.base = 0, .limit = 0, .selector = 0, .type = 0xb, .present = 1};
  cpu.ldt = {.selector = 0, .unusable = 1};
  cpu.cr0 = kCr0Pe | kCr0Et | kCr0Wp | kCr0Pg;
  cpu.cr3 = cr3;
  cpu.cr4 = kCr4Pae;
  cpu.efer = kEferLme | kEferLma | kEferNxe;
  return cpu;
}

base::Result<void> WriteIdentityPageTables(const base::GuestMemory& memory) {
  constexpr uint64_t kTwoMiB = 2 * base::MiB;
  constexpr uint64_t kDirectories = kIdentityMappedBytes / base::GiB;
  std::array<uint64_t, 512> table{};
  table[0] = kPdptAddress | kPtePresent | kPteWrite;
  TRY(memory.WriteObj(kPml4Address, table));
  table.fill(0);
  for (uint64_t i = 0; i < kDirectories; ++i) {
    table[i] = (kPageDirectoriesAddress + i * 0x1000) | kPtePresent | kPteWrite;
  }
  TRY(memory.WriteObj(kPdptAddress, table));
  for (uint64_t d = 0; d < kDirectories; ++d) {
    for (uint64_t i = 0; i < 512; ++i) {
      table[i] = (d * base::GiB + i * kTwoMiB) | kPtePresent | kPteWrite | kPteLarge;
    }
    TRY(memory.WriteObj(kPageDirectoriesAddress + d * 0x1000, table));
  }
  return {};
}

base::Result<CpuBootState> SetUpLongMode(const base::GuestMemory& memory, uint64_t entry) {
  constexpr uint64_t kCode = GdtEntry(kCode64Flags, 0, 0xfffff);
  constexpr uint64_t kData = GdtEntry(kDataFlags, 0, 0xfffff);
  TRY(WriteIdentityPageTables(memory));
  TRY(WriteGdtAndIdt(memory, kCode, kData));
  CpuBootState state = CommonState(kCode, kData);
  state.rip = entry;
  state.rsp = state.rbp = base::kBootStackTop;
  state.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  state.cr3 = kPml4Address;
  state.cr4 = kCr4Pae;
  state.efer = kEferLme | kEferLma;
  return state;
}

ProtectedModeLayout RelocatedProtectedModeLayout(uint64_t block) {
  return {block, block + kBootGdtEntries * 8, block + kRelocatedBootBlock - 0x10};
}

base::Result<CpuBootState> SetUpProtectedMode(const base::GuestMemory& memory, uint32_t entry,
                                              const ProtectedModeLayout& layout) {
  constexpr uint64_t kCode = GdtEntry(kCode32Flags, 0, 0xfffff);
  constexpr uint64_t kData = GdtEntry(kDataFlags, 0, 0xfffff);
  TRY(WriteGdtAndIdt(memory, kCode, kData, layout));
  CpuBootState state = CommonState(kCode, kData, layout);
  state.rip = entry;
  state.rsp = state.rbp = layout.stack_top;
  state.cr0 = kCr0Pe | kCr0Et | kCr0Ne;
  return state;
}

}  // namespace firmware
