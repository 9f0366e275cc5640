/*
 * notls: reads %fs:0x28 while the FS base is still 0, as code built with
 * the default stack protector would. hvt: page fault on address 0x28
 * (status 255, ABORT); spt: SIGSEGV.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    uint64_t value;

    __asm__ __volatile__("movq %%fs:0x28, %0" : "=r"(value) : : "memory");
    guest_printf("FAILURE: read 0x%lx through FS base 0\n", value);
    return GUEST_EXIT_FAILURE;
}
