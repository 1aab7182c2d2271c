// CPU templates: the CPUID (and MSR) profile a guest sees, applied on top of
// KVM_GET_SUPPORTED_CPUID (as Firecracker's cpu_templates).
//
//  - kHost: what KVM supports, passed through, with the topology normalised
//    (APIC IDs per vCPU, one thread per core, one core per vCPU).
//  - kEmulated: kHost minus what a software KVM (this project's CI hosts:
//    every guest instruction runs through KVM's x86 emulator) cannot execute:
//    XSAVE/AVX*/FMA/F16C, CX16, SSE3 and later SSE extensions, PCID/INVPCID,
//    SMEP/SMAP/UMIP, FSGSBASE, PKU, RDRAND/RDSEED, BMI/ADX/SHA, TSX, MPX, and
//    ERMS (so that Linux clears memory with rep stosq, not rep stosb).
//    It is also the deterministic profile the regression suite wants.
//
// kAuto picks kEmulated when the host CPU has neither VMX nor SVM (KVM then
// cannot be hardware-assisted) and kHost otherwise.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace vmm {

enum class CpuTemplate { kAuto, kHost, kEmulated };

[[nodiscard]] base::Result<CpuTemplate> ParseCpuTemplate(std::string_view name);
std::string_view CpuTemplateName(CpuTemplate cpu_template);

// kAuto resolved by probing the host CPU.
CpuTemplate ResolveCpuTemplate(CpuTemplate requested);

// Applies `cpu_template` (not kAuto) to `entries` for vCPU `vcpu_id` of
// `vcpu_count`. Pure function: unit-testable without KVM.
void ApplyCpuTemplate(CpuTemplate cpu_template, uint32_t vcpu_id, uint32_t vcpu_count,
                      std::vector<kvm_cpuid_entry2>& entries);

// Where KVM did not take the table: for each leaf/subleaf of `set` (what vmm
// gave KVM_SET_CPUID2) and register, the feature bits that `held` (what
// KVM_GET_CPUID2 reads back) has and `set` does not. Empty when KVM took the
// template as given (hardware KVM). Some software KVMs fill leaf 1 ECX and
// leaves 7 and 0xd from the host whatever the VMM asks (docs/linux.md), and a
// guest then sees features the template meant to hide. Pure function.
struct CpuidOverride {
  uint32_t function;
  uint32_t index;
  char reg;             // 'a', 'b', 'c' or 'd'
  uint32_t added_bits;  // set in `held`, clear in `set`
};
std::vector<CpuidOverride> FindCpuidOverrides(const std::vector<kvm_cpuid_entry2>& set,
                                              const std::vector<kvm_cpuid_entry2>& held);

// Model-specific registers every boot vCPU starts with (Firecracker's
// create_boot_msr_entries): SYSENTER/SYSCALL MSRs cleared, TSC 0,
// MISC_ENABLE.FAST_STRING, MTRRdefType = enabled, write-back.
std::vector<std::pair<uint32_t, uint64_t>> BootMsrs();

}  // namespace vmm
