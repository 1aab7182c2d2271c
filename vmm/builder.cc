#include "vmm/builder.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

#include "vmm/boot_trace.h"
#include "vmm/vnc/view.h"

namespace vmm {
namespace {

// Where KVM puts its private TSS and identity-map page on Intel hosts: just
// below the 4 GiB boundary, inside the MMIO hole (as Firecracker and QEMU).
constexpr uint64_t kKvmTssAddress = 0xfffbd000;
constexpr uint64_t kKvmIdentityMapAddress = 0xfffbc000;

kvm_segment ToKvm(const firmware::SegmentState& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

base::Result<std::unique_ptr<kvm::Kvm>> OpenKvm() {
  // VMM_KVM_DEVICE overrides the device path (tests use it to check the
  // "KVM unavailable" path; users with a renamed node may too).
  const char* device = std::getenv("VMM_KVM_DEVICE");
  return kvm::Kvm::Open(device != nullptr && *device != '\0' ? device : "/dev/kvm");
}

base::Result<void> SetUpVm(kvm::VmFd& vm, const base::GuestMemory& memory) {
  TRY(vm.SetTssAddr(kKvmTssAddress));
  if (auto result = vm.SetIdentityMapAddr(kKvmIdentityMapAddress); !result) {
    // Only VMX without unrestricted guest needs it; not fatal elsewhere.
    spdlog::debug("{}", result.error().ToString());
  }
  // Memory before the irqchip: on the software KVM of this project's hosts
  // KVM_SET_USER_MEMORY_REGION for 128 MiB takes 4-7 ms once the in-kernel
  // irqchip exists and ~0.15 ms before it (docs/architecture.md, "The KVM on
  // these machines"). KVM accepts either order on every host kind; the
  // irqchip's own APIC-access page is a private slot KVM adds itself.
  uint32_t slot = 0;
  for (const auto& region : memory.regions()) {
    TRY(vm.SetUserMemoryRegion(slot++, region.guest_phys, region.size, region.host));
  }
  TRY(vm.CreateIrqchip());
  TRY(vm.CreatePit2());
  return {};
}

// After KVM_SET_CPUID2 on vCPU 0: reads the table back and says where KVM
// did not take the template (FindCpuidOverrides). A warning when the user
// chose the template, an info line under `auto`. At --log-level debug it
// also prints the feature leaves as set and as held.
void CheckCpuidTaken(const kvm::VcpuFd& fd, const std::vector<kvm_cpuid_entry2>& set,
                     std::string_view template_name, bool chosen) {
  auto held = fd.GetCpuid();
  if (!held) {
    spdlog::debug("{}", held.error().message());
    return;
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    for (const auto& entry : set) {
      if (entry.function != 0x1 && entry.function != 0x7 && entry.function != 0xd &&
          entry.function != 0x80000001) {
        continue;
      }
      for (const auto& h : *held) {
        if (h.function != entry.function || h.index != entry.index) continue;
        spdlog::debug(
            "cpuid {:#x}.{}: set {:08x} {:08x} {:08x} {:08x}, KVM holds {:08x} {:08x} "
            "{:08x} {:08x}",
            entry.function, entry.index, entry.eax, entry.ebx, entry.ecx, entry.edx, h.eax, h.ebx,
            h.ecx, h.edx);
      }
    }
  }
  const auto overrides = FindCpuidOverrides(set, *held);
  if (overrides.empty()) return;
  std::string list;
  for (const auto& o : overrides) {
    list += fmt::format("{}leaf {:#x}.{} e{}x +{:#010x}", list.empty() ? "" : ", ", o.function,
                        o.index, o.reg, o.added_bits);
  }
  spdlog::log(chosen ? spdlog::level::warn : spdlog::level::info,
              "KVM did not take CPU template '{}' as given: it adds feature bits the template "
              "leaves out ({}), and the guest sees them (docs/linux.md, \"CPUID on this host\")",
              template_name, list);
}

// Registers, segments, control registers and the protocol's MSRs of one
// vCPU from the boot protocol's description.
base::Result<void> SetCpuState(kvm::VcpuFd& fd, const firmware::CpuBootState& cpu) {
  kvm_regs regs{};
  regs.rip = cpu.rip;
  regs.rsp = cpu.rsp;
  regs.rbp = cpu.rbp;
  regs.rflags = cpu.rflags;
  regs.rax = cpu.rax;
  regs.rbx = cpu.rbx;
  regs.rsi = cpu.rsi;
  regs.rdi = cpu.rdi;
  TRY(fd.SetRegs(regs));

  kvm_sregs sregs = TRY(fd.GetSregs());
  sregs.cs = ToKvm(cpu.cs);
  sregs.ds = ToKvm(cpu.ds);
  sregs.es = ToKvm(cpu.es);
  sregs.fs = ToKvm(cpu.fs);
  sregs.gs = ToKvm(cpu.gs);
  sregs.ss = ToKvm(cpu.ss);
  sregs.tr = ToKvm(cpu.tr);
  sregs.ldt = ToKvm(cpu.ldt);
  sregs.gdt.base = cpu.gdt.base;
  sregs.gdt.limit = cpu.gdt.limit;
  sregs.idt.base = cpu.idt.base;
  sregs.idt.limit = cpu.idt.limit;
  sregs.cr0 = cpu.cr0;
  sregs.cr3 = cpu.cr3;
  sregs.cr4 = cpu.cr4;
  sregs.efer = cpu.efer;
  TRY(fd.SetSregs(sregs));
  if (!cpu.msrs.empty()) TRY(fd.SetMsrs(cpu.msrs));
  return {};
}

base::Result<void> SetUpVcpu(const kvm::Kvm& kvm, kvm::VcpuFd& fd, const VmConfig& config,
                             CpuTemplate cpu_template, const firmware::BootInfo& boot) {
  auto cpuid = TRY(kvm.GetSupportedCpuid());
  ApplyCpuTemplate(cpu_template, fd.id(), config.cpus, cpuid);
  TRY(fd.SetCpuid(cpuid));
  if (fd.id() == 0) {
    CheckCpuidTaken(fd, cpuid, CpuTemplateName(cpu_template),
                    config.cpu_template != CpuTemplate::kAuto);
  }
  TRY(fd.SetMsrs(BootMsrs()));

  // x87/SSE state as after FNINIT and power-on MXCSR (Intel SDM Vol. 1 §8.1.5, §10.2.3).
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  TRY(fd.SetFpu(fpu));

  // LAPIC: LINT0 = ExtINT (the 8259's virtual wire), LINT1 = NMI, as the MP
  // spec's virtual-wire mode expects (MP 1.4 §3.6.2.2).
  auto lapic = TRY(fd.GetLapic());
  auto set_lvt = [&](size_t offset, uint32_t delivery_mode) {
    uint32_t value;
    std::memcpy(&value, &lapic.regs[offset], 4);
    value = (value & ~0x700u) | (delivery_mode << 8);
    std::memcpy(&lapic.regs[offset], &value, 4);
  };
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryExtInt = 7, kDeliveryNmi = 4;
  set_lvt(kLvtLint0, kDeliveryExtInt);
  set_lvt(kLvtLint1, kDeliveryNmi);
  TRY(fd.SetLapic(lapic));

  if (fd.id() == 0) return SetCpuState(fd, boot.cpu);
  // APs wait for INIT/SIPI in the in-kernel LAPIC, unless the protocol
  // starts them itself (Limine's MP request: parked in long mode).
  if (fd.id() > boot.aps.size()) return {};
  TRY(SetCpuState(fd, boot.aps[fd.id() - 1]));
  return fd.SetMpState(KVM_MP_STATE_RUNNABLE);
}

}  // namespace

base::Result<std::unique_ptr<Vm>> BuildVm(const VmConfig& config) {
  TRY(ValidateConfig(config));
  std::unique_ptr<Vm> vm(new Vm(config));
  vm->cpu_template_ = ResolveCpuTemplate(config.cpu_template);

  // Memory and kernel first: a bad image or a missing file is reported as
  // such (65/66) whether or not KVM is usable on this host.
  vm->memory_ = TRY(base::GuestMemory::Create(config.memory));
  Vm* raw = vm.get();
  vm->devices_ =
      TRY(DeviceManager::Create(vm->config_, vm->device_loop_.context(),
                                [raw](VmExit exit) { raw->RequestStop(std::move(exit)); }));
  firmware::BootConfig boot_config;
  boot_config.kernel_path = config.kernel;
  boot_config.initrd_paths = config.initrds;
  boot_config.cmdline = config.cmdline;
  if (std::string words = vm->devices_->CommandLineWords(); !words.empty()) {
    boot_config.cmdline += (boot_config.cmdline.empty() ? "" : " ") + words;
  }
  boot_config.protocol = config.boot_protocol;
  boot_config.cpus = config.cpus;
  boot_config.acpi = config.acpi;
  boot_config.virtio_mmio = vm->devices_->AcpiVirtioDevices();
  const FramebufferSpec& fb = config.framebuffer;
  if (fb.kind == FramebufferSpec::Kind::kOn) {
    boot_config.framebuffer = firmware::MakeFramebuffer(fb.width, fb.height);
  }
  if (fb.kind != FramebufferSpec::Kind::kOff) {
    boot_config.framebuffer_on_request = firmware::MakeFramebuffer(fb.width, fb.height);
  }
  vm->boot_ = TRY(firmware::LoadKernel(*vm->memory_, boot_config));
  boot_trace::Mark("kernel-loaded");
  spdlog::info("kernel {}: {} ({})", config.kernel, vm->boot_.description,
               firmware::BootProtocolName(vm->boot_.protocol));

  if (vm->boot_.framebuffer) {
    vm->framebuffer_ = TRY(FramebufferMemory::Create(*vm->boot_.framebuffer));
  }
  if (config.vnc.kind != VncSpec::Kind::kOff) {
    if (!vm->framebuffer_) {
      return base::MakeError(base::ErrorKind::kUsage,
                             "--vnc: the guest has no framebuffer (its kernel asked for none); "
                             "give --framebuffer WxH");
    }
    // Started now, while no filter is loaded on this thread (it spawns
    // vmm-vnc); keys reach the i8042 on the device loop.
    VncView::Options options;
    options.helper = VncView::DefaultHelperPath();
    if (const char* helper = std::getenv("VMM_VNC_PROGRAM"); helper != nullptr) {
      options.helper = helper;
    }
    options.seccomp = config.seccomp;
    options.log_level = config.log_level;
    vm->vnc_ =
        TRY(VncView::Create(config.vnc, *vm->framebuffer_, vm->device_loop_.context(), options,
                            [keyboard = vm->devices_.get()](uint32_t keysym, bool down) {
                              keyboard->KeyEvent(keysym, down);
                            }));
    spdlog::info("vnc: the live view listens on {} (vmm-vnc pid {}; e.g. vncviewer {})",
                 vm->vnc_->address(), vm->vnc_->pid(),
                 config.vnc.kind == VncSpec::Kind::kUnix
                     ? config.vnc.path
                     : fmt::format("{}::{}", config.vnc.host, vm->vnc_->port()));
  }

  vm->kvm_ = TRY(OpenKvm());
  vm->vm_fd_ = TRY(vm->kvm_->CreateVm());
  TRY(SetUpVm(*vm->vm_fd_, *vm->memory_));
  if (vm->framebuffer_) {
    // Its own slot after guest RAM's (docs/framebuffer.md).
    const auto slot = static_cast<uint32_t>(vm->memory_->regions().size());
    TRY(vm->vm_fd_->SetUserMemoryRegion(slot, vm->framebuffer_->geometry().address,
                                        vm->framebuffer_->mapped_size(), vm->framebuffer_->host()));
  }
  TRY(vm->devices_->Wire(*vm->vm_fd_, *vm->memory_));

  VcpuEnvironment env;
  env.pio = &vm->devices_->pio_bus();
  env.mmio = &vm->devices_->mmio_bus();
  env.memory = vm->memory_.get();
  env.counters = &vm->counters_;
  env.request_stop = [raw](VmExit exit) { raw->RequestStop(std::move(exit)); };
  DeviceManager* devices = vm->devices_.get();
  env.last_serial_line = [devices] { return devices->LastSerialLine(); };
  for (uint32_t id = 0; id < config.cpus; ++id) {
    auto vcpu = TRY(Vcpu::Create(*vm->vm_fd_, id, env));
    TRY(SetUpVcpu(*vm->kvm_, vcpu->fd(), vm->config_, vm->cpu_template_, vm->boot_));
    vm->vcpus_.push_back(std::move(vcpu));
  }
  boot_trace::Mark("vm-created");
  return vm;
}

}  // namespace vmm
