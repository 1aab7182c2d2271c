// Kernel entries (docs/guest-kernel.md, "Entries").
//
//  entry64    ELF e_entry, used by vmm: 64-bit long mode, paging on with an
//             identity map of at least 4 GiB, RSI = Linux boot_params (zero page).
//  pvh_entry  XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h, note 18):
//             32-bit protected mode, paging off, EBX = hvm_start_info
//             (xen/include/public/arch-x86/hvm/start_info.h).
//
// Both switch to the boot page tables below, load the boot GDT and call
// KernelEntry(kind, info_phys) on the boot stack in the higher half:
// kind 0 = zero page, 1 = PVH start info.
//
// Boot page tables (4 KiB-aligned, prefilled at build time so the boot path
// runs no fill loop): 2 MiB pages mapping physical 0..4 GiB three times:
//   identity      0x0000000000000000  (PML4[0], dropped once the kernel runs)
//   direct map    0xffff800000000000  (PML4[256])
//   kernel image  0xffffffff80000000  (PML4[511], PDPT[510..511]: physical 0..2 GiB)

#define KERNEL_VMA 0xffffffff80000000
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define BOOT_CS 0x08
#define BOOT_DS 0x10
#define PHASE_PORT 0x80
#define PHASE_KERNEL_ENTRY 0x40

.section .boot.text, "ax"

.code32
.global pvh_entry
pvh_entry:
  cli
  cld
  mov %ebx, %esi                  // hvm_start_info, kept across the switch
  rdtsc
  mov %eax, boot_tsc
  mov %edx, boot_tsc + 4
  mov $PHASE_KERNEL_ENTRY, %al
  out %al, $PHASE_PORT
  lgdt boot_gdtr
  mov $BOOT_DS, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %cr4, %eax
  or $CR4_PAE, %eax
  mov %eax, %cr4
  mov $boot_pml4, %eax
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $(EFER_LME | EFER_NXE), %eax
  wrmsr
  mov %cr0, %eax
  or $(CR0_PE | CR0_PG | CR0_WP), %eax
  mov %eax, %cr0
  ljmp $BOOT_CS, $pvh_entry64

.code64
pvh_entry64:
  mov $1, %edi
  mov %esi, %esi                  // zero-extend the start info address
  jmp common64

.global entry64
entry64:
  cli
  cld
  mov %rsi, %r8                   // zero page
  rdtsc
  mov %eax, boot_tsc
  mov %edx, boot_tsc + 4
  mov $PHASE_KERNEL_ENTRY, %al
  out %al, $PHASE_PORT
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_NXE, %eax
  wrmsr
  mov $boot_pml4, %eax            // identity-mapped here too: execution continues
  mov %rax, %cr3
  lgdt boot_gdtr
  pushq $BOOT_CS
  pushq $1f
  lretq
1:
  xor %edi, %edi
  mov %r8, %rsi

common64:
  mov $BOOT_DS, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  xor %eax, %eax
  mov %eax, %fs
  mov %eax, %gs
  movabs $boot_stack_top, %rsp
  xor %ebp, %ebp
  movabs $KernelEntry, %rax
  call *%rax
2:
  cli
  hlt
  jmp 2b

.section .boot.data, "aw"
.balign 8
.global boot_tsc
boot_tsc:
  .quad 0

// Boot GDT: null, 64-bit kernel code (0x08), kernel data (0x10). The kernel
// replaces it with its own GDT (user segments, TSS) early in KernelMain.
.balign 16
boot_gdt:
  .quad 0
  .quad 0x00af9a000000ffff        // 0x08: code, L=1, DPL 0
  .quad 0x00cf92000000ffff        // 0x10: data, flat, DPL 0
boot_gdt_end:
.balign 8
  .word 0, 0, 0
boot_gdtr:
  .word boot_gdt_end - boot_gdt - 1
  .quad boot_gdt

.balign 4096
.global boot_pml4
boot_pml4:
  .quad boot_pdpt + 0x3           // identity
  .fill 255, 8, 0
  .quad boot_pdpt + 0x3           // direct map at 0xffff800000000000
  .fill 254, 8, 0
  .quad boot_pdpt_high + 0x3      // kernel image at 0xffffffff80000000
boot_pdpt:
  .quad boot_pd + 0x0000 + 0x3
  .quad boot_pd + 0x1000 + 0x3
  .quad boot_pd + 0x2000 + 0x3
  .quad boot_pd + 0x3000 + 0x3
  .fill 508, 8, 0
boot_pdpt_high:
  .fill 510, 8, 0
  .quad boot_pd + 0x0000 + 0x3
  .quad boot_pd + 0x1000 + 0x3
boot_pd:
  .set pd_index, 0
  .rept 2048
  .quad (pd_index << 21) | 0x83   // present, writable, 2 MiB page
  .set pd_index, pd_index + 1
  .endr

// PVH entry note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), 8-byte
// descriptor (Linux uses a pointer-sized one; QEMU reads 8 bytes on ELF64).
.section .note.Xen, "a", @note
.balign 4
  .long 4
  .long 8
  .long 18
  .asciz "Xen"
  .balign 4
  .quad pvh_entry

.section .bss
.balign 16
boot_stack:
  .skip 16384
.global boot_stack_top
boot_stack_top:
