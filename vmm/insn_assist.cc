#include "vmm/insn_assist.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/guest_debug.h"

namespace vmm {
namespace {

// Control-register and EFER bits (Intel SDM Vol. 3A §2.5, §2.2.1).
constexpr uint64_t kCr0Em = 1ull << 2, kCr0Ts = 1ull << 3, kCr0Wp = 1ull << 16, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pse = 1ull << 4, kCr4Pae = 1ull << 5, kCr4Osfxsr = 1ull << 9,
                   kCr4La57 = 1ull << 12, kCr4Smap = 1ull << 21;
constexpr uint64_t kEferLma = 1ull << 10;

// Page-table entry bits (Vol. 3A §4.5, Table 4-19 ff.).
constexpr uint64_t kPtePresent = 1, kPteWrite = 2, kPteUser = 4, kPteAccessed = 1ull << 5,
                   kPteDirty = 1ull << 6, kPteLarge = 1ull << 7;
constexpr uint64_t kPteAddress = 0x000ffffffffff000ull;  // bits 51:12

// #PF error code bits (Vol. 3A §4.7).
constexpr uint32_t kPfPresent = 1, kPfWrite = 2, kPfUser = 4;

// Exception vectors (Vol. 3A §6.3.1).
constexpr uint8_t kVectorUd = 6, kVectorNm = 7, kVectorGp = 13, kVectorPf = 14;

constexpr uint64_t kPageSize = 4096;

std::atomic<uint64_t> counts[2];

base::Result<uint32_t> ReadMxcsr(kvm::VcpuFd& fd, MxcsrShadow& shadow) {
  const kvm_fpu fpu = TRY(fd.GetFpu());
  if (!shadow.probed) {
    kvm_fpu test = fpu;
    test.mxcsr = fpu.mxcsr ^ 0x40;  // DAZ: a legal bit to flip
    TRY(fd.SetFpu(test));
    const kvm_fpu back = TRY(fd.GetFpu());
    TRY(fd.SetFpu(fpu));
    shadow.kvm_keeps_it = back.mxcsr == test.mxcsr;
    shadow.probed = true;
    if (!shadow.kvm_keeps_it) {
      spdlog::info(
          "vcpu {}: KVM does not keep MXCSR in KVM_SET_FPU; vmm keeps it for "
          "LDMXCSR/STMXCSR",
          fd.id());
    }
  }
  return shadow.kvm_keeps_it ? fpu.mxcsr : shadow.value;
}

void Put(uint8_t* at, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}
uint64_t Get(const uint8_t* at, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(at[i]) << (8 * i);
  return value;
}

PageWalk Fault(bool present, bool write, bool user) {
  return PageWalk{false, 0,
                  (present ? kPfPresent : 0) | (write ? kPfWrite : 0) | (user ? kPfUser : 0)};
}

base::Result<void> WriteMxcsr(kvm::VcpuFd& fd, uint32_t value, MxcsrShadow& shadow) {
  kvm_fpu fpu = TRY(fd.GetFpu());
  fpu.mxcsr = value;
  TRY(fd.SetFpu(fpu));
  shadow.value = value;
  return {};
}

}  // namespace

std::optional<AssistInsn> DecodeAssist(std::span<const uint8_t> bytes, const AssistCpu& cpu) {
  constexpr size_t kMaxLength = 15;  // Vol. 2A §2.3.11
  size_t i = 0;
  int segment = -1;  // index into seg_base, -1: the default
  // Default address size: 64 in 64-bit mode, else CS.D (32 or 16); 67 toggles.
  bool address32 = !cpu.long_mode && cpu.default32;
  bool address_override = false;
  uint8_t rex = 0;
  auto at = [&](size_t n) -> std::optional<uint8_t> {
    if (n >= bytes.size() || n >= kMaxLength) return std::nullopt;
    return bytes[n];
  };
  // Legacy prefixes, then (64-bit mode) REX immediately before the opcode.
  for (;;) {
    auto b = at(i);
    if (!b) return std::nullopt;
    switch (*b) {
      case 0x26:
        segment = 0;
        break;
      case 0x2e:
        segment = 1;
        break;
      case 0x36:
        segment = 2;
        break;
      case 0x3e:
        segment = 3;
        break;
      case 0x64:
        segment = 4;
        break;
      case 0x65:
        segment = 5;
        break;
      case 0x67:
        address_override = true;
        break;
      case 0x66:  // 66/F2/F3 0F AE select other instructions (CLFLUSHOPT, *FSBASE...)
      case 0xf2:
      case 0xf3:
      case 0xf0:  // LOCK: #UD, which KVM would raise itself
        return std::nullopt;
      default:
        goto prefixes_done;
    }
    rex = 0;
    ++i;
  }
prefixes_done:
  if (address_override) address32 = cpu.long_mode ? true : !address32;
  if (!cpu.long_mode && !address32) return std::nullopt;  // 16-bit addressing: not handled
  if (auto b = at(i); cpu.long_mode && b && (*b & 0xf0) == 0x40) {
    rex = *b;
    ++i;
  }
  if (at(i) != 0x0f || at(i + 1) != 0xae) return std::nullopt;
  i += 2;
  auto modrm = at(i++);
  if (!modrm) return std::nullopt;
  const unsigned mod = *modrm >> 6, reg = (*modrm >> 3) & 7, rm = *modrm & 7;
  // Register forms are the fences; /0 /1 (FXSAVE, FXRSTOR) KVM emulates itself.
  if (mod == 3 || (reg != 2 && reg != 3)) return std::nullopt;
  const bool rex_x = rex & 2, rex_b = rex & 1;

  uint64_t address = 0;
  bool rip_relative = false;
  bool stack_default = false;  // base register RSP/RBP: SS is the default segment
  int64_t displacement = 0;
  unsigned displacement_bytes = mod == 1 ? 1 : mod == 2 ? 4 : 0;
  if (rm == 4) {
    auto sib = at(i++);
    if (!sib) return std::nullopt;
    const unsigned scale = *sib >> 6;
    const unsigned index = ((*sib >> 3) & 7) | (rex_x ? 8u : 0u);
    const unsigned base = (*sib & 7) | (rex_b ? 8u : 0u);
    if (index != 4) address += cpu.gpr[index] << scale;  // index 4 (RSP) means none
    if ((base & 7) == 5 && mod == 0) {
      displacement_bytes = 4;  // no base, disp32
    } else {
      address += cpu.gpr[base];
      stack_default = (base & 7) == 4 || (base & 7) == 5;
    }
  } else if (rm == 5 && mod == 0) {
    displacement_bytes = 4;
    rip_relative = cpu.long_mode;  // 32-bit modes: an absolute disp32
  } else {
    const unsigned base = rm | (rex_b ? 8u : 0u);
    address += cpu.gpr[base];
    stack_default = (base & 7) == 5;
  }
  for (unsigned n = 0; n < displacement_bytes; ++n) {
    auto b = at(i++);
    if (!b) return std::nullopt;
    displacement |= static_cast<int64_t>(*b) << (8 * n);
  }
  if (displacement_bytes == 1) displacement = static_cast<int8_t>(displacement);
  if (displacement_bytes == 4) displacement = static_cast<int32_t>(displacement);

  AssistInsn insn{reg == 2 ? AssistOp::kLdmxcsr : AssistOp::kStmxcsr, static_cast<uint8_t>(i), 0};
  address += static_cast<uint64_t>(displacement);
  if (rip_relative) address += cpu.rip + insn.length;
  if (address32) address &= 0xffffffffull;
  uint64_t base = 0;
  if (cpu.long_mode) {
    if (segment == 4 || segment == 5) base = cpu.seg_base[segment];  // only FS/GS have bases
  } else {
    base = cpu.seg_base[segment >= 0 ? segment : stack_default ? 2 : 3];
  }
  insn.linear = base + address;
  if (!cpu.long_mode) insn.linear &= 0xffffffffull;
  return insn;
}

base::Result<PageWalk> WalkGuestPage(const base::GuestMemory& memory, const PagingState& paging,
                                     uint64_t linear, bool write) {
  if (!(paging.cr0 & kCr0Pg)) return PageWalk{true, linear & 0xffffffffull, 0};
  const bool pae = paging.cr4 & kCr4Pae;
  const bool long_mode = paging.efer & kEferLma;
  bool writable = true, user = true;
  std::vector<uint64_t> touched;  // entries to mark accessed
  uint64_t table = 0, entry = 0, entry_gpa = 0, page_mask = 0;

  auto read_entry = [&](uint64_t gpa, bool wide) -> base::Result<uint64_t> {
    entry_gpa = gpa;
    const std::string context = fmt::format("guest page-table entry at {:#x}", gpa);
    if (wide) return TRY_CTX(memory.ReadObj<uint64_t>(gpa), context);
    return static_cast<uint64_t>(TRY_CTX(memory.ReadObj<uint32_t>(gpa), context));
  };
  auto visit = [&]() -> bool {  // false: not present
    if (!(entry & kPtePresent)) return false;
    writable = writable && (entry & kPteWrite);
    user = user && (entry & kPteUser);
    touched.push_back(entry_gpa);
    return true;
  };

  bool wide = true;
  bool leaf = false;
  if (long_mode) {
    const int levels = (paging.cr4 & kCr4La57) ? 5 : 4;
    table = paging.cr3 & kPteAddress;
    for (int level = levels; level >= 1 && !leaf; --level) {
      const unsigned shift = 12 + 9 * static_cast<unsigned>(level - 1);
      entry = TRY(read_entry(table + ((linear >> shift) & 0x1ff) * 8, true));
      if (!visit()) return Fault(false, write, paging.user);
      if (level == 1 || ((level == 2 || level == 3) && (entry & kPteLarge))) {
        leaf = true;
        page_mask = (1ull << shift) - 1;
      }
      table = entry & kPteAddress;
    }
  } else if (pae) {
    // The four PDPTEs carry no R/W or U/S bits (Vol. 3A §4.4.1).
    entry = TRY(read_entry((paging.cr3 & 0xffffffe0ull) + ((linear >> 30) & 3) * 8, true));
    if (!(entry & kPtePresent)) return Fault(false, write, paging.user);
    table = entry & kPteAddress;
    for (int level = 2; level >= 1 && !leaf; --level) {
      const unsigned shift = 12 + 9 * static_cast<unsigned>(level - 1);
      entry = TRY(read_entry(table + ((linear >> shift) & 0x1ff) * 8, true));
      if (!visit()) return Fault(false, write, paging.user);
      if (level == 1 || (entry & kPteLarge)) {
        leaf = true;
        page_mask = (1ull << shift) - 1;
      }
      table = entry & kPteAddress;
    }
  } else {
    wide = false;
    entry = TRY(read_entry((paging.cr3 & 0xfffff000ull) + ((linear >> 22) & 0x3ff) * 4, false));
    if (!visit()) return Fault(false, write, paging.user);
    if ((entry & kPteLarge) && (paging.cr4 & kCr4Pse)) {
      page_mask = (1ull << 22) - 1;
    } else {
      entry = TRY(read_entry((entry & 0xfffff000ull) + ((linear >> 12) & 0x3ff) * 4, false));
      if (!visit()) return Fault(false, write, paging.user);
      page_mask = kPageSize - 1;
    }
  }

  // Access rights (Vol. 3A §4.6).
  if (paging.user && !user) return Fault(true, write, true);
  if (write && !writable && (paging.user || (paging.cr0 & kCr0Wp))) {
    return Fault(true, write, paging.user);
  }
  if (!paging.user && user && (paging.cr4 & kCr4Smap) && !paging.rflags_ac) {
    return Fault(true, write, false);
  }
  // Accessed on every level, dirty on the leaf for a write, as the MMU does.
  for (size_t n = 0; n < touched.size(); ++n) {
    const uint64_t gpa = touched[n];
    const bool last = n + 1 == touched.size();
    if (wide) {
      uint64_t value = TRY(memory.ReadObj<uint64_t>(gpa));
      const uint64_t updated = value | kPteAccessed | (last && write ? kPteDirty : 0);
      if (updated != value) TRY(memory.WriteObj<uint64_t>(gpa, updated));
    } else {
      uint32_t value = TRY(memory.ReadObj<uint32_t>(gpa));
      const uint32_t updated = value | static_cast<uint32_t>(kPteAccessed) |
                               static_cast<uint32_t>(last && write ? kPteDirty : 0);
      if (updated != value) TRY(memory.WriteObj<uint32_t>(gpa, updated));
    }
  }
  const uint64_t frame = wide ? (entry & kPteAddress) : (entry & 0xfffff000ull);
  return PageWalk{true, (frame & ~page_mask) | (linear & page_mask), 0};
}

base::Result<bool> CompleteUnemulatedInstruction(kvm::VcpuFd& fd, const base::GuestMemory& memory,
                                                 MxcsrShadow& shadow) {
  const kvm_run* run = fd.run();
  if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR ||
      run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
    return false;
  }
  kvm_regs regs = TRY(fd.GetRegs());
  kvm_sregs sregs = TRY(fd.GetSregs());

  AssistCpu cpu;
  cpu.gpr = {regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
             regs.r8,  regs.r9,  regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15};
  cpu.rip = regs.rip;
  cpu.long_mode = (sregs.efer & kEferLma) && sregs.cs.l;
  cpu.default32 = sregs.cs.db;
  const kvm_segment* segments[6] = {&sregs.es, &sregs.cs, &sregs.ss,
                                    &sregs.ds, &sregs.fs, &sregs.gs};
  for (int s = 0; s < 6; ++s) cpu.seg_base[s] = segments[s]->base;
  PagingState paging{sregs.cr0,
                     sregs.cr3,
                     sregs.cr4,
                     sregs.efer,
                     (sregs.cs.selector & 3) == 3,
                     (regs.rflags & (1ull << 18)) != 0};

  // The instruction: KVM's copy when it gave one, else fetched through the
  // guest's page tables (up to the end of the page).
  std::span<const uint8_t> bytes;
  uint8_t fetched[15];
  if ((run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
      run->emulation_failure.insn_size > 0) {
    bytes = std::span<const uint8_t>(run->emulation_failure.insn_bytes,
                                     std::min<size_t>(run->emulation_failure.insn_size, 15));
  } else {
    const uint64_t linear = sregs.cs.base + regs.rip;
    auto walk = WalkGuestPage(memory, paging, linear, false);
    if (!walk || !walk->ok) return false;
    const size_t n = std::min<uint64_t>(15, kPageSize - (linear & (kPageSize - 1)));
    if (!memory.Read(walk->gpa, std::span(fetched, n))) return false;
    bytes = std::span<const uint8_t>(fetched, n);
  }
  const auto insn = DecodeAssist(bytes, cpu);
  if (!insn) return false;

  auto inject = [&](uint8_t vector, std::optional<uint32_t> error_code) -> base::Result<bool> {
    TRY(InjectException(fd, vector, error_code));
    return true;
  };
  if ((sregs.cr0 & kCr0Em) || !(sregs.cr4 & kCr4Osfxsr)) return inject(kVectorUd, std::nullopt);
  if (sregs.cr0 & kCr0Ts) return inject(kVectorNm, std::nullopt);
  constexpr uint64_t size = 4;
  const bool store = insn->op == AssistOp::kStmxcsr;

  // Translate every page of the operand before touching any (the fault comes
  // first, as on hardware), then copy page by page.
  struct Piece {
    uint64_t gpa, length;
  };
  std::vector<Piece> pieces;
  for (uint64_t done = 0; done < size;) {
    const uint64_t linear = insn->linear + done;
    const uint64_t length = std::min(size - done, kPageSize - (linear & (kPageSize - 1)));
    const PageWalk walk = TRY(WalkGuestPage(memory, paging, linear, store));
    if (!walk.ok) {
      sregs.cr2 = linear;
      TRY(fd.SetSregs(sregs));
      return inject(kVectorPf, walk.error_code);
    }
    pieces.push_back({walk.gpa, length});
    done += length;
  }
  std::array<uint8_t, size> operand{};
  auto copy_in = [&]() -> base::Result<void> {
    uint64_t offset = 0;
    for (const Piece& piece : pieces) {
      TRY(memory.Read(piece.gpa, std::span(operand.data() + offset, piece.length)));
      offset += piece.length;
    }
    return {};
  };
  auto copy_out = [&](uint64_t bytes_out) -> base::Result<void> {
    uint64_t offset = 0;
    for (const Piece& piece : pieces) {
      if (offset >= bytes_out) break;
      const uint64_t n = std::min(piece.length, bytes_out - offset);
      TRY(memory.Write(piece.gpa, std::span<const uint8_t>(operand.data() + offset, n)));
      offset += n;
    }
    return {};
  };

  if (insn->op == AssistOp::kLdmxcsr) {
    TRY(copy_in());
    const auto value = static_cast<uint32_t>(Get(operand.data(), 4));
    if (value & ~kMxcsrMask) return inject(kVectorGp, 0);
    (void)TRY(ReadMxcsr(fd, shadow));  // probes whether KVM keeps MXCSR
    TRY(WriteMxcsr(fd, value, shadow));
  } else {
    Put(operand.data(), TRY(ReadMxcsr(fd, shadow)), 4);
    TRY(copy_out(4));
  }
  regs.rip += insn->length;
  TRY(fd.SetRegs(regs));
  const uint64_t n = counts[static_cast<int>(insn->op)].fetch_add(1, std::memory_order_relaxed);
  if (n == 0) {
    static constexpr const char* kNames[] = {"ldmxcsr", "stmxcsr"};
    spdlog::info(
        "vcpu {}: completing `{}` for the guest (KVM cannot emulate it; "
        "vmm/insn_assist.h), first at RIP {:#x}",
        fd.id(), kNames[static_cast<int>(insn->op)], cpu.rip);
  }
  return true;
}

uint64_t AssistCount(AssistOp op) {
  return counts[static_cast<int>(op)].load(std::memory_order_relaxed);
}

}  // namespace vmm
