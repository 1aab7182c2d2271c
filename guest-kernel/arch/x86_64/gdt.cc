#include "arch/x86_64/gdt.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/trap.h"

extern "C" char syscall_entry[];

namespace arch {
namespace {

// 64-bit TSS (Intel SDM vol. 3A §8.7, figure 8-11).
struct [[gnu::packed]] Tss {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct [[gnu::packed]] Pointer {
  uint16_t limit;
  uint64_t base;
};

alignas(16) constinit uint64_t g_gdt[7] = {
    0,
    0x00af9a000000ffff,  // 0x08 kernel code: P, DPL 0, code, L=1
    0x00cf92000000ffff,  // 0x10 kernel data
    0x00cff2000000ffff,  // 0x18 user data: DPL 3
    0x00affa000000ffff,  // 0x20 user code: DPL 3, L=1
    0,
    0,  // 0x28 TSS, filled in CpuInit
};
// The TSS with its I/O permission bitmap right behind it (SDM vol. 3A
// §19.5.2): one bit per port, 1 = ring 3 may not use it, and the byte after
// the map all ones. Starts all-denied; SetIoPorts opens ranges.
struct [[gnu::packed]] TssWithIoMap {
  Tss tss;
  uint8_t io_map[8192 + 1];
  constexpr TssWithIoMap() : tss(), io_map() {
    for (uint8_t& b : io_map) b = 0xff;
  }
};
alignas(16) constinit TssWithIoMap g_tss_io;
Tss& g_tss = g_tss_io.tss;
alignas(16) constinit uint8_t g_df_stack[8192];
alignas(16) constinit uint8_t g_nmi_stack[8192];
constinit PerCpu g_cpu = {};

// RFLAGS bits SYSCALL clears: TF, IF, DF, AC, NT (Intel SDM vol. 2B SYSCALL).
constexpr uint64_t kSyscallMask = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18) | (1 << 14);

}  // namespace

void CpuInit() {
  g_tss.ist[kIstDoubleFault - 1] = reinterpret_cast<uint64_t>(g_df_stack + sizeof(g_df_stack));
  g_tss.ist[kIstNmi - 1] = reinterpret_cast<uint64_t>(g_nmi_stack + sizeof(g_nmi_stack));
  g_tss.iomap_base = sizeof(Tss);  // the bitmap follows; all ports denied until SetIoPorts
  const uint64_t base = reinterpret_cast<uint64_t>(&g_tss_io);
  const uint64_t limit = sizeof(TssWithIoMap) - 1;
  // System descriptor, type 9 = available 64-bit TSS (SDM vol. 3A §8.2.3).
  g_gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  g_gdt[6] = base >> 32;

  Pointer p{sizeof(g_gdt) - 1, reinterpret_cast<uint64_t>(g_gdt)};
  asm volatile(
      "lgdt %0\n"
      "pushq %1\n"
      "leaq 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1:\n"
      "mov %2, %%eax\n"
      "mov %%eax, %%ds\n"
      "mov %%eax, %%es\n"
      "mov %%eax, %%ss\n"
      "xor %%eax, %%eax\n"
      "mov %%eax, %%fs\n"
      "mov %%eax, %%gs\n"
      "ltr %w3\n"
      :
      : "m"(p), "i"(kKernelCs), "i"(kKernelDs), "r"(kTssSelector)
      : "rax", "memory");

  g_cpu.self = &g_cpu;
  Wrmsr(kMsrGsBase, reinterpret_cast<uint64_t>(&g_cpu));
  Wrmsr(kMsrKernelGsBase, 0);
  IdtInitInterrupts();
  IdtSetIst(kVecDoubleFault, kIstDoubleFault);
  IdtSetIst(kVecNmi, kIstNmi);

  Wrmsr(kMsrEfer, Rdmsr(kMsrEfer) | kEferSce | kEferNxe);
  Wrmsr(kMsrStar, (static_cast<uint64_t>(0x10) << 48) | (static_cast<uint64_t>(kKernelCs) << 32));
  Wrmsr(kMsrLstar, reinterpret_cast<uint64_t>(syscall_entry));
  Wrmsr(kMsrFmask, kSyscallMask);
}

PerCpu& ThisCpu() { return g_cpu; }

void SetKernelStack(uint64_t top) {
  g_tss.rsp[0] = top;
  g_cpu.kernel_rsp = top;
}

void SetIoPorts(uint32_t first, uint32_t count, bool allow) {
  for (uint32_t port = first; port < first + count && port < 65536; ++port) {
    const uint8_t bit = static_cast<uint8_t>(1u << (port & 7));
    if (allow) {
      g_tss_io.io_map[port >> 3] &= static_cast<uint8_t>(~bit);
    } else {
      g_tss_io.io_map[port >> 3] |= bit;
    }
  }
}

uint64_t SyscallEntryAddress() { return reinterpret_cast<uint64_t>(syscall_entry); }

}  // namespace arch
