// Thin wrappers around x86-64 instructions the kernel needs (Intel SDM vol. 2).
// Only instructions that KVM's instruction emulator implements appear here
// (docs/architecture.md, "The KVM on these machines").
#pragma once

#include <stdint.h>

namespace arch {

inline void Outb(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
inline void Outl(uint16_t port, uint32_t value) {
  asm volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
inline uint8_t Inb(uint16_t port) {
  uint8_t value;
  asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}
// One exit for the whole buffer on KVM (string I/O: KVM_EXIT_IO with count).
inline void OutsB(uint16_t port, const void* data, uint64_t count) {
  asm volatile("rep outsb" : "+S"(data), "+c"(count) : "d"(port) : "memory");
}

inline uint64_t Rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline uint64_t Rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline void Wrmsr(uint32_t msr, uint64_t value) {
  asm volatile("wrmsr"
               :
               : "c"(msr), "a"(static_cast<uint32_t>(value)),
                 "d"(static_cast<uint32_t>(value >> 32))
               : "memory");
}

struct CpuidResult {
  uint32_t eax, ebx, ecx, edx;
};
inline CpuidResult Cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  CpuidResult r;
  asm volatile("cpuid"
               : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
               : "a"(leaf), "c"(subleaf));
  return r;
}

#define ARCH_READ_CR(n)                           \
  inline uint64_t ReadCr##n() {                   \
    uint64_t v;                                   \
    asm volatile("mov %%cr" #n ", %0" : "=r"(v)); \
    return v;                                     \
  }                                               \
  inline void WriteCr##n(uint64_t v) { asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
ARCH_READ_CR(0)
ARCH_READ_CR(2)
ARCH_READ_CR(3)
ARCH_READ_CR(4)
#undef ARCH_READ_CR

inline void Invlpg(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }
inline void Cli() { asm volatile("cli" ::: "memory"); }
inline void Sti() { asm volatile("sti" ::: "memory"); }
inline void Hlt() { asm volatile("hlt" ::: "memory"); }
inline void StiHlt() { asm volatile("sti; hlt" ::: "memory"); }
inline void Pause() { asm volatile("pause" ::: "memory"); }
inline uint64_t ReadFlags() {
  uint64_t f;
  asm volatile("pushfq; popq %0" : "=r"(f));
  return f;
}

// MSRs (Intel SDM vol. 4, table 2-2).
inline constexpr uint32_t kMsrApicBase = 0x1b;
inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrFmask = 0xc0000084;
inline constexpr uint32_t kMsrFsBase = 0xc0000100;
inline constexpr uint32_t kMsrGsBase = 0xc0000101;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint64_t kEferSce = 1ull << 0;
inline constexpr uint64_t kEferNxe = 1ull << 11;

}  // namespace arch
