// Boot-protocol entry point: load a kernel image (and initrds) into guest
// memory, build what the protocol promises the kernel (page tables, GDT, zero
// page / start info, e820, command line), and describe the vCPU state to
// start it in. No KVM here: vmm translates CpuBootState into kvm_regs and
// kvm_sregs, so all of this is unit-testable on any host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/acpi.h"

namespace firmware {

// A segment register as KVM's struct kvm_segment describes it.
struct SegmentState {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0;  // descriptor type field (e.g. 0xb: execute/read, accessed)
  uint8_t present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
  uint8_t unusable = 0;
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;
};

// The state the boot vCPU starts in. Registers not named here start at 0.
struct CpuBootState {
  uint64_t rip = 0;
  uint64_t rsp = 0;
  uint64_t rbp = 0;       // vmm's own paths start with RBP = RSP; Limine's with 0
  uint64_t rflags = 0x2;  // bit 1 is reserved-one; IF clear: interrupts off
  uint64_t rax = 0, rbx = 0, rsi = 0, rdi = 0;  // protocol arguments
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  SegmentState cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  // MSRs the protocol sets beyond vmm's defaults (index, value), e.g.
  // Limine's IA32_PAT.
  std::vector<std::pair<uint32_t, uint64_t>> msrs;
};

enum class BootProtocol {
  kAuto,       // multiboot2 > Limine > BOOTBOOT > ELF64 entry > bzImage 64-bit > PVH > multiboot
  kElf64,      // ELF64 at e_entry in long mode, RSI = zero page
  kPvh,        // XEN_ELFNOTE_PHYS32_ENTRY, 32-bit protected mode, EBX = hvm_start_info
  kBzImage,    // Linux 64-bit boot protocol
  kMultiboot,  // multiboot v1, EAX = 0x2BADB002, EBX = multiboot info
  // Multiboot2, EAX = 0x36d76289, EBX = boot information above the kernel and
  // modules. kAuto picks it first when the image has a multiboot2 header.
  kMultiboot2,
  // A bzImage whose payload vmm decompresses (firmware/unpack.h): the vmlinux
  // inside at its ELF64 entry, RSI = zero page built from the bzImage's setup
  // header. Never chosen by kAuto.
  kBzImageUnpacked,
  // The Limine boot protocol (firmware/limine.h): an ELF64 in the top 2 GiB
  // with a base revision tag or requests; long mode, HHDM, every vCPU
  // started with an MP request. kAuto picks it after multiboot2.
  kLimine,
  // BOOTBOOT (firmware/bootboot.h): an ELF64 with a `bootboot` symbol or
  // linked at -2 MiB; every core enters in long mode. kAuto picks it after
  // Limine.
  kBootboot,
};

// The linear framebuffer a protocol hands over (docs/framebuffer.md): 32-bit
// XRGB8888 (blue in bits 0-7, green 8-15, red 16-23, bits 24-31 unused) at
// `address`, `pitch` bytes per row. Not guest RAM: vmm maps it separately.
struct Framebuffer {
  uint64_t address = 0;
  uint32_t width = 0, height = 0, pitch = 0;
  uint64_t size() const { return uint64_t{pitch} * height; }
};
// A framebuffer of width x height at base::kFramebufferBase.
Framebuffer MakeFramebuffer(uint32_t width, uint32_t height);

struct BootConfig {
  std::string kernel_path;
  std::vector<std::string> initrd_paths;  // several only for multiboot modules
  std::string cmdline;
  BootProtocol protocol = BootProtocol::kAuto;
  uint32_t cpus = 1;
  // ACPI tables (firmware/acpi.h) at base::kAcpiTables describing `cpus`
  // and `virtio_mmio`, handed over by every protocol that has a field for
  // the RSDP (zero page, PVH, multiboot2). Off (--acpi off): no tables, and
  // guests find the machine through the MP table alone.
  bool acpi = true;
  std::vector<AcpiVirtioMmio> virtio_mmio;
  // The framebuffer: `framebuffer` when the user asked for one (every
  // protocol with a field for it gets it, Linux's screen_info included);
  // otherwise `framebuffer_on_request` is handed to a kernel that asks for
  // one through its protocol (Limine's framebuffer request, multiboot2's
  // framebuffer tag, BOOTBOOT always), nullopt: none (--framebuffer off).
  std::optional<Framebuffer> framebuffer;
  std::optional<Framebuffer> framebuffer_on_request;
};

struct BootInfo {
  BootProtocol protocol = BootProtocol::kAuto;  // the one actually used
  CpuBootState cpu;
  uint64_t kernel_start = 0;  // guest-physical extent of the loaded image
  uint64_t kernel_end = 0;    // (for a bzImage: load address + init_size)
  uint64_t initrd_start = 0;  // guest-physical extent of the initrd(s); 0, 0 without one
  uint64_t initrd_end = 0;
  // What the protocol's register argument points to: the zero page (ELF64,
  // bzImage), hvm_start_info (PVH) or the multiboot info.
  uint64_t boot_params = 0;
  // The RSDP's guest-physical address; 0 without ACPI tables (--acpi off, or
  // guest memory below 1 MiB).
  uint64_t acpi_rsdp = 0;
  // The application processors' start state, vCPU 1 first, when the protocol
  // starts them itself (Limine's MP request: parked in long mode). Empty:
  // they wait for INIT/SIPI as on a PC.
  std::vector<CpuBootState> aps;
  // The framebuffer the kernel was told about; vmm maps memory there.
  std::optional<Framebuffer> framebuffer;
  std::string description;  // one line for logs, e.g. "ELF64 entry 0x100000, 3 segments"
};

// Loads `config.kernel_path` into `memory` and prepares the boot structures.
// Errors: kNoInput (66) when a file is missing or unreadable, kBadImage (65)
// when an image is malformed (the message names the file and the problem),
// kConfig (78) for a command line that is too long or an initrd that does
// not fit. Never writes outside guest RAM (all writes go through
// GuestMemory).
[[nodiscard]] base::Result<BootInfo> LoadKernel(const base::GuestMemory& memory,
                                                const BootConfig& config);

// "auto", "elf64", "pvh", "bzimage", "multiboot", "multiboot2",
// "bzimage-unpacked": the --boot-protocol values.
const char* BootProtocolName(BootProtocol protocol);

// "auto, elf64, ... or bzimage-unpacked": every name, for messages.
std::string BootProtocolChoices();
// The inverse of BootProtocolName; kUsage naming the accepted values otherwise.
[[nodiscard]] base::Result<BootProtocol> ParseBootProtocol(std::string_view name);

}  // namespace firmware
