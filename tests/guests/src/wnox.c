/*
 * wnox: calls code placed in .data. spt maps .data without PROT_EXEC
 * (SIGSEGV). hvt guest page tables have no NX bit, so there the code
 * runs; the guest then reports that and exits with status 2.
 */
#include "guest.h"

#define WNOX_RAN_STATUS 2

/* mov $42, %eax; ret */
static uint8_t code[] __attribute__((aligned(16))) = {
    0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3,
};

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    int (*fn)(void) = (int (*)(void))(uintptr_t)code;

    int value = fn();
    guest_printf("wnox: code in .data ran and returned %d: "
                 "no execute protection\n", value);
    return WNOX_RAN_STATUS;
}
