/*
 * illegal: executes ud2, an invalid opcode. Under hvt the guest catches
 * the #UD trap and aborts (status 255, ABORT). An spt process dies with
 * SIGILL (132), and an spt guest in a VM must end with the same status.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    __asm__ __volatile__("ud2");
    guest_printf("FAILURE: ud2 did not trap\n");
    return GUEST_EXIT_FAILURE;
}
