// Kernel main: both entries (arch/x86_64/boot.S) arrive here.
#include <stdint.h>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/trap.h"
#include "kernel/boot_info.h"
#include "kernel/console.h"
#include "kernel/machine.h"
#include "lib/cmdline.h"
#include "lib/string.h"

extern "C" uint64_t boot_tsc;  // rdtsc at the first entry instruction (boot.S)

namespace kernel {
namespace {

constexpr const char* kVersion = "0.1";
constexpr uint64_t kDirectMap = 0xffff800000000000;  // boot.S: PML4[256] maps 0..4 GiB
constexpr uint64_t kBootMapped = 4ull << 30;

// Boot-time view of physical memory through the boot direct map.
class BootPhysView final : public PhysView {
 public:
  const uint8_t* Map(uint64_t phys, uint64_t len) const override {
    if (phys >= kBootMapped || len > kBootMapped - phys) return nullptr;
    return reinterpret_cast<const uint8_t*>(kDirectMap + phys);
  }
};

constinit BootInfo g_boot_info;

[[noreturn]] void RaiseFault(const char* v, size_t n) {
  if (lib::EqualN(v, n, "ud")) {
    asm volatile("ud2");
  } else if (lib::EqualN(v, n, "gp")) {
    // A non-canonical address (Intel SDM vol. 3A §3.3.7.1) raises #GP(0).
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(0x8000000000000000ull);
    (void)*p;
  } else if (lib::EqualN(v, n, "pf")) {
    // PML4[128] is never mapped.
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(0x0000400000000000ull);
    (void)*p;
  } else if (lib::EqualN(v, n, "de")) {
    uint32_t zero = 0;
    asm volatile("xor %%edx, %%edx; divl %1" : "+a"(zero) : "r"(zero) : "rdx");
  }
  Print("[boot] fault=: unknown fault kind, use ud|gp|pf|de\n");
  ExitMachine(kExitBootError);
}

}  // namespace
}  // namespace kernel

extern "C" [[noreturn]] void KernelEntry(uint32_t kind, uint64_t info_phys) {
  using namespace kernel;
  ConsoleInit();
  arch::IdtInit();
  const uint64_t entry_tsc = *reinterpret_cast<volatile uint64_t*>(
      kDirectMap + reinterpret_cast<uint64_t>(&boot_tsc));
  Print("[boot] entry: {}\n", kind == 0 ? "64-bit zero page" : "pvh");

  BootPhysView phys;
  const char* err = kind == 0 ? ParseZeroPage(phys, info_phys, &g_boot_info)
                              : ParsePvh(phys, info_phys, &g_boot_info);
  Print("[boot] cmdline: {}\n", g_boot_info.cmdline);
  if (err != nullptr) {
    Print("[boot] error: {}\n", err);
    ExitMachine(kExitBootError);
  }
  for (size_t i = 0; i < g_boot_info.region_count; ++i) {
    const MemRegion& r = g_boot_info.regions[i];
    Print("[mm] e820: [0x{:016x}-0x{:016x}] {}\n", r.base, r.base + r.size - 1, MemTypeName(r.type));
  }
  Print("[mm] usable: {} MiB\n", UsableBytes(g_boot_info) >> 20);
  Print("[boot] cycles since entry: {}\n", arch::Rdtsc() - entry_tsc);
  Print("vmm guest kernel {} ready\n", kVersion);

  const lib::Cmdline cmdline(g_boot_info.cmdline);
  const char* value;
  size_t len;
  if (cmdline.Get("fault", &value, &len)) RaiseFault(value, len);
  if (cmdline.Has("triple")) {
    Print("[boot] triple fault\n");
    ConsoleFlush();
    arch::TripleFault();
  }
  if (cmdline.Has("exit")) {
    const uint64_t code = cmdline.GetU64("exit", kExitBootError);
    Print("[boot] exit {}\n", code);
    ExitMachine(static_cast<uint32_t>(code));
  }
  if (cmdline.Has("hang")) {
    Print("[boot] hang\n");
    ConsoleFlush();
    for (;;) arch::Pause();
  }
  Print("[boot] halt\n");
  HaltForever();
}
