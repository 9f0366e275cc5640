/*
 * privileged: executes one instruction that a process may not, named by
 * its first argument. An spt process gets #GP, so SIGSEGV (139), for hlt,
 * cli, rdmsr, in, out, int $0x30 and a control register move. int3 gives
 * SIGTRAP (133). int $0x80 is the i386 system call, which the seccomp
 * filter's architecture check kills with SIGSYS (159). "abovetop" stores
 * just past the guest's memory, which an spt process has not mapped
 * (139). An spt guest in a VM runs in ring 3 and must end with the same
 * status.
 */
#include "args.h"

static const char *const names[] = {
    "hlt", "cli", "rdmsr", "in", "out", "int3", "int80", "int30", "movcr3",
    "abovetop",
};

int guest_main(const struct guest_start_info *info)
{
    const char *cursor = info->cmdline;
    char word[16];

    if (!guest_next_word(&cursor, word, sizeof(word)))
        guest_abort("usage: privileged INSTRUCTION");
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(word, names[i]) != 0)
            continue;
        switch (i) {
        case 0: __asm__ __volatile__("hlt"); break;
        case 1: __asm__ __volatile__("cli"); break;
        case 2: {
            uint32_t lo, hi;
            __asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x10));
            break;
        }
        case 3: {
            uint8_t v;
            __asm__ __volatile__("inb $0x80, %0" : "=a"(v));
            break;
        }
        case 4: __asm__ __volatile__("outb %0, $0x80" : : "a"((uint8_t)0)); break;
        case 5: __asm__ __volatile__("int3"); break;
        case 6: __asm__ __volatile__("int $0x80" : : "a"(1) : "memory"); break;
        case 7: __asm__ __volatile__("int $0x30"); break;
        case 8: __asm__ __volatile__("mov %%cr3, %%rax" : : : "rax"); break;
        case 9:
            *(volatile uint8_t *)(info->heap_start + info->heap_size) = 1;
            break;
        }
        guest_printf("FAILURE: %s did not fault\n", word);
        return GUEST_EXIT_FAILURE;
    }
    guest_abort("unknown instruction %s", word);
}
