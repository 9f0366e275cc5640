/*
 * xnow: writes to its own .text. spt maps .text R+X (SIGSEGV). hvt
 * guest page tables allow the write, but the tender maps .text read-only
 * on the host, so KVM reports the write to the tender, which must end
 * the guest with status 1.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    volatile uint8_t *text = (volatile uint8_t *)(uintptr_t)guest_main;

    *text = *text;
    guest_printf("FAILURE: write to .text at %p did not fault\n",
                 (void *)text);
    return GUEST_EXIT_FAILURE;
}
