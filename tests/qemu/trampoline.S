/*
 * trampoline: the code QEMU runs in place of a BIOS, which puts the boot
 * CPU in exactly the state firmware::LoadKernel's BootInfo describes and
 * jumps to its RIP (docs/testing.md, "Boot checks under QEMU"). It is
 * linked at 0xff000 (the last page of the ROM QEMU maps at both
 * 0xe0000-0xfffff and 0xfffe0000-0xffffffff); tests/qemu/qemu_boot.py fills
 * the parameter block at the start of the page from the dumped BootInfo and
 * places the page, with its temporary page tables, into the ROM image.
 *
 * It runs from ROM only and writes no guest RAM itself: no stack, RFLAGS
 * through SAHF. (The CPU may set accessed bits in the dumped GDT and the
 * page tables, and LTR marks a TSS busy, as any use of them would.)
 *
 * Path: reset vector (real mode) -> temporary GDT, CR0.PE -> 32-bit code.
 * Then either
 *   protected mode (CR0.PG = 0; multiboot, multiboot2, PVH): the dumped GDT,
 *     CS through a far jump, the data segments, IDT, CR0/CR4/EFER, MSRs,
 *     registers, jump to RIP; or
 *   long mode: CR4, CR3 = the temporary PML4 (the guest's entries plus an
 *     identity map of the low 2 MiB when the guest has none there), EFER,
 *     MSRs, CR0 -> compatibility mode -> 64-bit code; the dumped GDT, CS,
 *     data segments, FS/GS base, LDTR, TR (only when its selector is
 *     non-zero: LTR cannot load a null selector), IDT; then to this page's
 *     alias in the guest's own page tables (param_alias), CR3 = the guest's,
 *     registers, jump to RIP.
 */
        .set ROM_PAGE, 0xff000
        .set P_MODE, 0x00       /* 0 protected mode, 1 long mode */
        .set P_RIP, 0x08
        .set P_RSP, 0x10
        .set P_RBP, 0x18
        .set P_RAX, 0x20
        .set P_RBX, 0x28
        .set P_RSI, 0x30
        .set P_RDI, 0x38
        .set P_CR0, 0x40
        .set P_CR3, 0x48        /* the guest's */
        .set P_CR4, 0x50
        .set P_EFER, 0x58       /* without LMA (the CPU sets it) */
        .set P_TMP_CR3, 0x60    /* the temporary PML4 (long mode) */
        .set P_ALIAS, 0x68      /* this page's virtual address in the guest's tables */
        .set P_FLAGS, 0x70      /* RFLAGS bits 0-7 (SAHF: CF PF AF ZF SF) */
        .set P_CS, 0x78         /* far pointer to pm_cs_loaded: offset (4), selector (2) */
        .set P_DS, 0x80
        .set P_ES, 0x82
        .set P_FS, 0x84
        .set P_GS, 0x86
        .set P_SS, 0x88
        .set P_LDT, 0x8a
        .set P_TR, 0x8c
        .set P_FS_BASE, 0x90
        .set P_GS_BASE, 0x98
        .set P_GDT, 0xa0        /* limit (2 bytes), base (8) */
        .set P_IDT, 0xb0
        .set P_NMSRS, 0xc0
        .set P_CS64, 0xc8       /* far pointer to lm_cs_loaded: offset (4), selector (2) */
        .set P_MSRS, 0xd0       /* up to 16 (index 8 bytes, value 8 bytes) */

        .section .text, "ax"
        .code16
        .globl _start
_start:
params:
        .fill P_CS, 1, 0
        .long pm_cs_loaded, 0           /* the selector is filled in */
        .fill P_CS64 - P_CS - 8, 1, 0
        .long lm_cs_loaded, 0
        .fill 16 * 16, 1, 0
        .if . - params != P_MSRS + 16 * 16
        .error "parameter block layout"
        .endif
        .balign 8
tmp_gdt:
        .quad 0
        .quad 0x00cf9b000000ffff        /* 0x08: flat 32-bit code, accessed */
        .quad 0x00cf93000000ffff        /* 0x10: flat data, accessed */
        .quad 0x00af9b000000ffff        /* 0x18: 64-bit code, accessed */
tmp_gdt_end:
tmp_gdtr:
        .word tmp_gdt_end - tmp_gdt - 1
        .long tmp_gdt
pm32_ptr:
        .long pm32
        .word 0x08

real_entry:
        cli
        cld
        xor %ax, %ax
        mov %ax, %ds
        lgdtl %cs:(tmp_gdtr - 0xf0000)
        mov %cr0, %eax
        or $1, %eax
        mov %eax, %cr0
        ljmpl *%cs:(pm32_ptr - 0xf0000)

        .code32
pm32:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov %ax, %fs
        mov %ax, %gs
        /* MSRs the protocol sets (e.g. IA32_PAT), for either mode. */
        mov params+P_NMSRS, %esi
        lea params+P_MSRS, %ebx
1:      test %esi, %esi
        jz 2f
        mov (%ebx), %ecx
        mov 8(%ebx), %eax
        mov 12(%ebx), %edx
        wrmsr
        add $16, %ebx
        dec %esi
        jmp 1b
2:      cmpl $0, params+P_MODE
        jne long_mode

        /* Protected mode: the dumped GDT and CS first, still with flat DS. */
        lgdt params+P_GDT
        ljmpl *params+P_CS
pm_cs_loaded:
        mov params+P_CR4, %eax
        mov %eax, %cr4
        mov $0xc0000080, %ecx
        mov params+P_EFER, %eax
        mov params+P_EFER+4, %edx
        wrmsr
        lidt %cs:params+P_IDT
        mov %cs:params+P_CR0, %eax
        mov %eax, %cr0
        mov %cs:params+P_LDT, %ax
        lldt %ax
        mov %cs:params+P_TR, %ax
        test %ax, %ax
        jz 1f
        ltr %ax
1:      mov %cs:params+P_DS, %ax
        mov %ax, %ds
        mov %cs:params+P_ES, %ax
        mov %ax, %es
        mov %cs:params+P_FS, %ax
        mov %ax, %fs
        mov %cs:params+P_GS, %ax
        mov %ax, %gs
        mov %cs:params+P_SS, %ax
        mov %ax, %ss
        mov %cs:params+P_RSP, %esp
        mov %cs:params+P_RBP, %ebp
        mov %cs:params+P_RBX, %ebx
        mov %cs:params+P_RSI, %esi
        mov %cs:params+P_RDI, %edi
        xor %ecx, %ecx                  /* also clears OF */
        xor %edx, %edx
        xor %eax, %eax
        mov %cs:params+P_FLAGS, %ah
        sahf
        mov %cs:params+P_RAX, %eax
        jmp *%cs:params+P_RIP

long_mode:
        mov params+P_CR4, %eax
        mov %eax, %cr4
        mov params+P_TMP_CR3, %eax
        mov %eax, %cr3
        mov $0xc0000080, %ecx
        mov params+P_EFER, %eax
        mov params+P_EFER+4, %edx
        wrmsr
        mov params+P_CR0, %eax
        mov %eax, %cr0
        ljmpl $0x18, $lm64

        .code64
lm64:
        lgdt params+P_GDT(%rip)
        ljmpl *params+P_CS64(%rip)
lm_cs_loaded:
        mov params+P_DS(%rip), %ax
        mov %ax, %ds
        mov params+P_ES(%rip), %ax
        mov %ax, %es
        mov params+P_SS(%rip), %ax
        mov %ax, %ss
        mov params+P_FS(%rip), %ax
        mov %ax, %fs
        mov params+P_GS(%rip), %ax
        mov %ax, %gs
        mov $0xc0000100, %ecx
        mov params+P_FS_BASE(%rip), %eax
        mov params+P_FS_BASE+4(%rip), %edx
        wrmsr
        mov $0xc0000101, %ecx
        mov params+P_GS_BASE(%rip), %eax
        mov params+P_GS_BASE+4(%rip), %edx
        wrmsr
        mov params+P_LDT(%rip), %ax
        lldt %ax
        mov params+P_TR(%rip), %ax
        test %ax, %ax
        jz 1f
        ltr %ax
1:      lidt params+P_IDT(%rip)
        /* On to this page through the guest's own mapping of it. */
        mov params+P_ALIAS(%rip), %rax
        add $(lm_alias - ROM_PAGE), %rax
        jmp *%rax
lm_alias:
        mov params+P_CR3(%rip), %rax
        mov %rax, %cr3
        mov params+P_RSP(%rip), %rsp
        mov params+P_RBP(%rip), %rbp
        mov params+P_RBX(%rip), %rbx
        mov params+P_RSI(%rip), %rsi
        mov params+P_RDI(%rip), %rdi
        xor %ecx, %ecx                  /* also clears OF */
        xor %edx, %edx
        xor %eax, %eax
        mov params+P_FLAGS(%rip), %ah
        sahf
        mov params+P_RAX(%rip), %rax
        jmp *params+P_RIP(%rip)

        /* The reset vector, 0xfffffff0 (CS base 0xffff0000, IP 0xfff0). */
        .code16
        .org 0xff0
reset:
        ljmp $0xf000, $(real_entry - 0xf0000)
        .org 0x1000
