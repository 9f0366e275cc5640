/*
 * exception: writes to 0x400000000 (16 GiB), outside guest memory. hvt:
 * the page fault reaches the runtime's trap handler (status 255, ABORT);
 * spt: SIGSEGV.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    volatile uint64_t *p = (volatile uint64_t *)0x400000000ULL;

    *p = 1;
    guest_printf("FAILURE: write to 0x400000000 did not fault\n");
    return GUEST_EXIT_FAILURE;
}
