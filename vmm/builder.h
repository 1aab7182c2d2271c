// Turns a VmConfig into a ready-to-run Vm (Firecracker's builder.rs): maps
// guest memory, creates the devices (vmm/device_manager.h) so that their
// virtio_mmio.device= words reach the kernel command line, loads the kernel
// (firmware::LoadKernel), opens KVM and creates the in-kernel irqchip and
// PIT, wires the devices, and creates and sets up the vCPUs (CPUID template,
// MSRs, FPU, LAPIC, the boot CPU's registers). Main thread.
#pragma once

#include <memory>

#include "base/error.h"
#include "vmm/config.h"
#include "vmm/vm.h"

namespace vmm {

// Errors in the order a user fixes them: config, memory, devices, kernel
// image (65/66) before KVM (69), whether or not KVM is usable on this host.
[[nodiscard]] base::Result<std::unique_ptr<Vm>> BuildVm(const VmConfig& config);

}  // namespace vmm
