/*
 * zeropage: reads address 0. hvt leaves the first page unmapped in the
 * guest page tables (page fault, status 255, ABORT); spt leaves it
 * unmapped in the process (SIGSEGV). The load is in assembly because C
 * makes a NULL dereference undefined and gcc may drop it.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    uint64_t value;

    __asm__ __volatile__("movq 0, %0" : "=r"(value) : : "memory");
    guest_printf("FAILURE: read 0x%lx from address 0\n", value);
    return GUEST_EXIT_FAILURE;
}
