// Kernel main: both entries (arch/x86_64/boot.S) arrive in KernelEntry.
#include <stdint.h>

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/trap.h"
#include "kernel/boot_info.h"
#include "kernel/console.h"
#include "kernel/invoke.h"
#include "kernel/ipc.h"
#include "kernel/machine.h"
#include "kernel/process.h"
#include "kernel/sched.h"
#include "kernel/selftest.h"
#include "kernel/serial_input.h"
#include "kernel/syscall.h"
#include "kernel/vm.h"
#include "lib/cmdline.h"
#include "lib/string.h"

extern "C" uint64_t boot_tsc;  // rdtsc at the first entry instruction (boot.S)

namespace kernel {
namespace {

constexpr const char* kVersion = "0.2";
constexpr uint64_t kBootDirectMap = 0xffff800000000000;  // boot.S: PML4[256] maps 0..4 GiB
constexpr uint64_t kBootMapped = 4ull << 30;
constexpr uint32_t kCalibrateMs = 10;

// Boot-time view of physical memory through the boot page tables' direct map.
class BootPhysView final : public PhysView {
 public:
  const uint8_t* Map(uint64_t phys, uint64_t len) const override {
    if (phys >= kBootMapped || len > kBootMapped - phys) return nullptr;
    return reinterpret_cast<const uint8_t*>(kBootDirectMap + phys);
  }
};

constinit BootInfo g_boot_info;
constinit lib::Cmdline g_cmdline;

}  // namespace

const char* KernelCmdline() { return g_boot_info.cmdline; }

namespace {

// Boot phases: rdtsc at the end of each (docs/guest-kernel.md, "Boot cost").
struct PhaseMark {
  const char* name;
  uint64_t tsc;
};
constinit PhaseMark g_marks[12] = {};
constinit size_t g_mark_count = 0;
constinit uint64_t g_entry_tsc = 0;
void Mark(const char* name) {
  if (g_mark_count < 12) g_marks[g_mark_count++] = PhaseMark{name, arch::Rdtsc()};
}
uint64_t Us(uint64_t cycles) {
  const uint64_t hz = arch::Apic().tsc_hz;
  return hz == 0 ? 0 : cycles * 1000000 / hz;
}

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
  Print("[boot] fault=: unknown fault kind, use ud|gp|pf|de|stack\n");
  ExitMachine(kExitBootError);
}

// The first-version command-line words (exit, fault, triple, hang) act
// before anything else is set up, so that they stay fast and independent of
// the rest of the kernel.
void EarlyWords() {
  const char* value;
  size_t len;
  if (g_cmdline.Get("fault", &value, &len) && !lib::EqualN(value, len, "stack")) {
    RaiseFault(value, len);
  }
  if (g_cmdline.Has("triple")) {
    Print("[boot] triple fault\n");
    ConsoleFlush();
    arch::TripleFault();
  }
  if (g_cmdline.Has("exit")) {
    const uint64_t code = g_cmdline.GetU64("exit", kExitBootError);
    Print("[boot] exit {}\n", code);
    ExitMachine(static_cast<uint32_t>(code));
  }
  if (g_cmdline.Has("hang")) {
    Print("[boot] hang\n");
    ConsoleFlush();
    for (;;) arch::Pause();
  }
}

void OnFirstSyscall(Process* p) {
  if (!p->is_init) return;
  Phase(kPhaseUserSpaceReady);
  const uint64_t now = arch::Rdtsc();
  Print("[boot] user space ready: init made its first system call {} us after entry\n",
        Us(now - g_entry_tsc));
}

// One line: every byte printed costs an exit (~15 us) on an emulating KVM.
void PrintPhases() {
  ConsoleSink sink;
  lib::FormatTo(sink, "[boot] phases (us):");
  uint64_t prev = g_entry_tsc;
  for (size_t i = 0; i < g_mark_count; ++i) {
    lib::FormatTo(sink, " {} {}", g_marks[i].name, Us(g_marks[i].tsc - prev));
    prev = g_marks[i].tsc;
  }
  lib::FormatTo(sink, "; total {}\n", Us(prev - g_entry_tsc));
  ConsoleFlush();
}

[[gnu::noinline]] void NoinlineProbe(int i) { asm volatile("" : : "r"(i)); }

// `prof`: costs of basic operations on this host, in TSC cycles.
void Profile() {
  auto time = [](const char* what, auto fn) {
    const uint64_t t0 = arch::Rdtsc();
    fn();
    const uint64_t t1 = arch::Rdtsc();
    Print("[prof] {}: {} cycles ({} us)\n", what, t1 - t0, Us(t1 - t0));
  };
  time("1000-iteration loop (~3000 instructions)", [] {
    for (int i = 0; i < 1000; ++i) asm volatile("" ::: "memory");
  });
  time("1000 stores to one stack slot", [] {
    volatile uint64_t slot = 0;
    for (int i = 0; i < 1000; ++i) slot = static_cast<uint64_t>(i);
    (void)slot;
  });
  time("1000 loads from .rodata", [] {
    static const char text[] = "abcdefgh";
    uint64_t sum = 0;
    for (int i = 0; i < 1000; ++i) {
      sum += reinterpret_cast<const volatile char*>(text)[i & 7];
    }
    asm volatile("" : : "r"(sum));
  });
  time("1000 non-inlined calls", [] {
    for (int i = 0; i < 1000; ++i) NoinlineProbe(i);
  });
  time("Print of a 60-character line",
       [] { Print("[prof] ..........................................................\n"); });
  time("ConsoleWrite+Flush of 60 characters", [] {
    ConsoleWrite("[prof] .................................................... raw\n", 60);
    ConsoleFlush();
  });
  time("Print of 60 characters, no fields",
       [] { Print("[prof] ..........................................................\n"); });
  time("Print with two hex fields",
       [] { Print("[prof] 0x{:016x}-0x{:016x}\n", 0x1234u, 0x5678u); });
  time("format 60 characters into a buffer", [] {
    char buf[80];
    lib::FormatBuffer(buf, sizeof(buf), "{} {} {:#x} ........................................", 1,
                      2, 3);
  });
  time("CR3 reload", [] { arch::WriteCr3(arch::ReadCr3()); });
  time("frame alloc + zero (rep stosq 4 KiB)", [] { (void)Frames().AllocZeroed(); });
  time("touch 16 fresh frames (one write each)", [] {
    for (int i = 0; i < 16; ++i) PhysPtr<volatile uint64_t>(FrameAlloc().Alloc())[0] = 1u;
  });
  time("one port write (phase port)", [] { Phase(0x42); });
  time("rdmsr (x2APIC id)", [] { (void)arch::Rdmsr(0x802); });
}

// fault=stack: overflows this kernel thread's 16 KiB stack into its guard
// page: the #PF cannot be delivered on the same stack, so the CPU raises #DF
// on its IST stack (exit 40).
[[gnu::noinline]] uint64_t Recurse(uint64_t depth, uint64_t limit) {
  volatile uint8_t frame[512];
  frame[0] = static_cast<uint8_t>(depth);
  return depth == limit ? frame[0] : Recurse(depth + 1, limit) + frame[0];
}

void MainThread(void*) {
  Mark("sched");
  if (g_cmdline.ValueIs("fault", "stack")) {
    Print("[boot] kernel stack overflow\n");
    (void)Recurse(0, g_cmdline.GetU64("depth", 1000000));
  }
  PrintPhases();
  if (g_cmdline.Has("prof")) Profile();
  const char* test;
  size_t test_len;
  if (g_cmdline.Get("test", &test, &test_len)) {
    const bool all = lib::EqualN(test, test_len, "all");
    const bool k = all || lib::EqualN(test, test_len, "kernel");
    const bool u = all || lib::EqualN(test, test_len, "user");
    if (!k && !u) {
      Print("[test] unknown test set, use test=all|kernel|user\n");
      ExitMachine(kExitBootError);
    }
    const int failed = RunSelfTests(k, u);
    Print("[test] {}\n", failed == 0 ? "all passed" : "FAILED");
    ExitMachine(failed == 0 ? kExitOk : kExitTestsFailed);
  }
  if (g_cmdline.Has("bench")) {
    const uint64_t n = g_cmdline.GetU64("bench", 1000);
    Print("[bench] starting, {} iterations\n", n);
    RunBench(n);
    Print("[bench] done\n");
    ExitMachine(kExitOk);
  }
  int64_t err = 0;
  Process* init = Spawn("init", 4, 100, nullptr, 0, &err, /*start=*/false);
  if (init == nullptr) {
    Print("[boot] cannot start init: {}\n", err);
    Panic("no init");
  }
  init->is_init = true;
  GiveRootTokens(init);
  StartProcess(init, 0);
  Print("[boot] starting init (pid {})\n", init->pid);
  const int64_t code = WaitProcess(init);
  Print("[proc] init exited with {}; kernel idle (serial input is echoed)\n", code);
}

}  // namespace
}  // namespace kernel

extern "C" [[noreturn]] void KernelEntry(uint32_t kind, uint64_t info_phys) {
  using namespace kernel;
  ConsoleInit();
  arch::IdtInit();
  g_entry_tsc =
      *reinterpret_cast<volatile uint64_t*>(kBootDirectMap + reinterpret_cast<uint64_t>(&boot_tsc));
  Mark("console+idt");
  Print("[boot] entry: {}\n", kind == 0 ? "64-bit zero page" : "pvh");

  BootPhysView phys;
  const char* err = kind == 0 ? ParseZeroPage(phys, info_phys, &g_boot_info)
                              : ParsePvh(phys, info_phys, &g_boot_info);
  g_cmdline = lib::Cmdline(g_boot_info.cmdline);
  Print("[boot] cmdline: {}\n", g_boot_info.cmdline);
  if (err != nullptr) {
    Print("[boot] error: {}\n", err);
    ExitMachine(kExitBootError);
  }
  for (size_t i = 0; i < g_boot_info.region_count; ++i) {
    const MemRegion& r = g_boot_info.regions[i];
    Print("[mm] e820: [0x{:016x}-0x{:016x}] {}\n", r.base, r.base + r.size - 1,
          MemTypeName(r.type));
  }
  Print("[mm] usable: {} MiB\n", UsableBytes(g_boot_info) >> 20);
  Print("[boot] cycles since entry: {}\n", arch::Rdtsc() - g_entry_tsc);
  Print("vmm guest kernel {} ready\n", kVersion);
  Mark("bootinfo");
  EarlyWords();

  arch::CpuInit();
  Mark("cpu");
  VmInit(g_boot_info);
  Mark("memory");
  const arch::ApicInfo apic = arch::ApicInit(MapMmio, kCalibrateMs);
  Print("[cpu] {} id {}, timer {} kHz, tsc {} MHz{}\n", apic.x2apic ? "x2apic" : "xapic", apic.id,
        apic.timer_hz / 1000, apic.tsc_hz / 1000000,
        apic.calibrated ? " (calibrated against PIT channel 0)" : " (PIT silent: defaults)");
  if (g_cmdline.Has("prof")) {
    Print("[cpu] calibration: {} PIT ticks, {} polls, {} LAPIC ticks, {} TSC ticks\n",
          apic.pit_ticks, apic.polls, apic.lapic_ticks, apic.tsc_ticks);
  }
  arch::ApicStartTimer(kTimerHz);
  SerialInputInit();
  Mark("apic");
  SetFirstUserSyscallHook(OnFirstSyscall);
  IpcInit();
  SchedInit();
  if (CreateKernelThread("main", 200, MainThread, nullptr) == nullptr) Panic("no main thread");
  SchedStart();
}
