#include "vmm/cpu_template.h"

#include <cpuid.h>

#include <algorithm>
#include <utility>

namespace vmm {
namespace {

constexpr uint32_t Bit(unsigned n) { return 1u << n; }

// CPUID leaf 1 ECX (Intel SDM Vol. 2A, Table 3-10).
constexpr uint32_t kLeaf1EcxHiddenWhenEmulated =
    Bit(0) /*SSE3*/ | Bit(1) /*PCLMULQDQ*/ | Bit(9) /*SSSE3*/ | Bit(12) /*FMA*/ |
    Bit(13) /*CMPXCHG16B*/ | Bit(17) /*PCID*/ | Bit(19) /*SSE4.1*/ | Bit(20) /*SSE4.2*/ |
    Bit(22) /*MOVBE*/ | Bit(23) /*POPCNT*/ | Bit(25) /*AES*/ | Bit(26) /*XSAVE*/ |
    Bit(27) /*OSXSAVE*/ | Bit(28) /*AVX*/ | Bit(29) /*F16C*/ | Bit(30) /*RDRAND*/;
constexpr uint32_t kLeaf1EcxHypervisor = Bit(31);
// CPUID leaf 7.0 EBX: nothing is kept. Not even ERMS: with it, Linux clears
// memory with `rep stosb`, and KVM's emulator runs string instructions one
// iteration per emulation step, so byte-sized iterations cost 8x what
// `rep stosq` (chosen without ERMS) does.
constexpr uint32_t kLeaf7EbxKeptWhenEmulated = 0;
// CPUID 0x80000001 ECX: keep LAHF/SAHF in 64-bit mode only.
constexpr uint32_t kExt1EcxKeptWhenEmulated = Bit(0);
// CPUID 0x80000001 EDX: keep SYSCALL, NX, 1 GiB pages, RDTSCP, LM (and the
// legacy mirror bits of leaf 1 EDX).
constexpr uint32_t kExt1EdxHiddenWhenEmulated =
    Bit(22) /*MMXEXT*/ | Bit(30) /*3DNow!Ext*/ | Bit(31) /*3DNow!*/;

bool HostHasHardwareVirtualization() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & Bit(5))) return true;           // VMX
  if (__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & Bit(2))) return true;  // SVM
  return false;
}

}  // namespace

namespace {

// Every template with its name for --cpu-template and the config's
// "cpu_template"; a new template is one line here.
constexpr std::pair<CpuTemplate, std::string_view> kCpuTemplateNames[] = {
    {CpuTemplate::kAuto, "auto"},
    {CpuTemplate::kHost, "host"},
    {CpuTemplate::kEmulated, "emulated"},
};

}  // namespace

base::Result<CpuTemplate> ParseCpuTemplate(std::string_view name) {
  for (const auto& [value, template_name] : kCpuTemplateNames) {
    if (name == template_name) return value;
  }
  return base::MakeError(base::ErrorKind::kUsage,
                         "unknown CPU template '{}' (expected auto, host or emulated)", name);
}

std::string_view CpuTemplateName(CpuTemplate cpu_template) {
  for (const auto& [value, name] : kCpuTemplateNames) {
    if (value == cpu_template) return name;
  }
  return "?";
}

CpuTemplate ResolveCpuTemplate(CpuTemplate requested) {
  if (requested != CpuTemplate::kAuto) return requested;
  return HostHasHardwareVirtualization() ? CpuTemplate::kHost : CpuTemplate::kEmulated;
}

void ApplyCpuTemplate(CpuTemplate cpu_template, uint32_t vcpu_id, uint32_t vcpu_count,
                      std::vector<kvm_cpuid_entry2>& entries) {
  const bool emulated = cpu_template == CpuTemplate::kEmulated;
  for (auto& entry : entries) {
    switch (entry.function) {
      case 0x1:
        // EBX[31:24] initial APIC ID, [23:16] logical processors per package,
        // [15:8] CLFLUSH line size in 8-byte units.
        entry.ebx = (vcpu_id << 24) | (std::min<uint32_t>(vcpu_count, 255) << 16) | (8u << 8);
        entry.ecx |= kLeaf1EcxHypervisor;
        if (vcpu_count > 1) entry.edx |= Bit(28);  // HTT: several logical CPUs
        if (emulated) entry.ecx &= ~kLeaf1EcxHiddenWhenEmulated;
        break;
      case 0x4:
        // EAX[31:26]: cores per package - 1.
        entry.eax = (entry.eax & 0x03ffffffu) | ((std::min<uint32_t>(vcpu_count, 64) - 1) << 26);
        break;
      case 0x7:
        if (emulated) {
          if (entry.index == 0) {
            entry.ebx &= kLeaf7EbxKeptWhenEmulated;
            entry.ecx = 0;
            entry.edx = 0;
            entry.eax = 0;  // no further subleaves
          } else {
            entry.eax = entry.ebx = entry.ecx = entry.edx = 0;
          }
        }
        break;
      case 0xb:
      case 0x1f:
        // Extended topology: level 0 = SMT (1 thread), level 1 = core.
        entry.edx = vcpu_id;
        if (entry.index == 0) {
          entry.eax = 0;
          entry.ebx = 1;
          entry.ecx = (1u << 8) | entry.index;
        } else if (entry.index == 1) {
          uint32_t shift = 0;
          while ((1u << shift) < vcpu_count) ++shift;
          entry.eax = shift;
          entry.ebx = vcpu_count;
          entry.ecx = (2u << 8) | entry.index;
        } else {
          entry.eax = entry.ebx = 0;
          entry.ecx = entry.index;
        }
        break;
      case 0xd:
        if (emulated) entry.eax = entry.ebx = entry.ecx = entry.edx = 0;  // no XSAVE
        break;
      case 0x14:  // processor trace
        if (emulated) entry.eax = entry.ebx = entry.ecx = entry.edx = 0;
        break;
      case 0x80000001:
        if (emulated) {
          entry.ecx &= kExt1EcxKeptWhenEmulated;
          entry.edx &= ~kExt1EdxHiddenWhenEmulated;
        }
        break;
      default:
        break;
    }
  }
}

std::vector<CpuidOverride> FindCpuidOverrides(const std::vector<kvm_cpuid_entry2>& set,
                                              const std::vector<kvm_cpuid_entry2>& held) {
  std::vector<CpuidOverride> overrides;
  for (const auto& want : set) {
    // Feature leaves only: other leaves carry counts and sizes, not flags.
    const bool feature_leaf =
        want.function == 0x1 || want.function == 0x7 || want.function == 0x80000001;
    if (!feature_leaf) continue;
    for (const auto& got : held) {
      if (got.function != want.function || got.index != want.index) continue;
      const uint32_t regs_set[4] = {want.eax, want.ebx, want.ecx, want.edx};
      const uint32_t regs_held[4] = {got.eax, got.ebx, got.ecx, got.edx};
      for (int r = 0; r < 4; ++r) {
        // Leaf 1 EAX/EBX are signature and topology, leaf 7.0 EAX the subleaf
        // count: not flags.
        if (want.function == 0x1 && r <= 1) continue;
        if (want.function == 0x7 && want.index == 0 && r == 0) continue;
        // Leaf 1 EDX bit 28 (HTT) is topology, which KVM may set itself.
        uint32_t added = regs_held[r] & ~regs_set[r];
        if (want.function == 0x1 && r == 3) added &= ~Bit(28);
        if (want.function == 0x1 && r == 2) added &= ~Bit(27);  // OSXSAVE follows CR4
        if (added != 0) overrides.push_back({want.function, want.index, "abcd"[r], added});
      }
    }
  }
  return overrides;
}

std::vector<std::pair<uint32_t, uint64_t>> BootMsrs() {
  // Intel SDM Vol. 4, "Model-Specific Registers".
  constexpr uint32_t kSysenterCs = 0x174, kSysenterEsp = 0x175, kSysenterEip = 0x176;
  constexpr uint32_t kStar = 0xc0000081, kLstar = 0xc0000082, kCstar = 0xc0000083;
  constexpr uint32_t kSyscallMask = 0xc0000084, kKernelGsBase = 0xc0000102;
  constexpr uint32_t kTsc = 0x10, kMiscEnable = 0x1a0, kMtrrDefType = 0x2ff;
  constexpr uint64_t kMiscEnableFastString = 1;
  constexpr uint64_t kMtrrEnable = 1u << 11, kMemTypeWriteBack = 6;
  return {{kSysenterCs, 0},
          {kSysenterEsp, 0},
          {kSysenterEip, 0},
          {kStar, 0},
          {kLstar, 0},
          {kCstar, 0},
          {kSyscallMask, 0},
          {kKernelGsBase, 0},
          {kTsc, 0},
          {kMiscEnable, kMiscEnableFastString},
          {kMtrrDefType, kMtrrEnable | kMemTypeWriteBack}};
}

}  // namespace vmm
