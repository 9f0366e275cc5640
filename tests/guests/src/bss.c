/*
 * bss: checks that a 1 MiB .bss starts zeroed and is writable. The Solo5
 * tenders do not load or clear .bss (its PT_LOAD has no file contents);
 * they rely on guest memory being fresh. With too little memory for the
 * image and the minimum heap, the runtime aborts with "Not enough memory"
 * before guest_main runs.
 */
#include "guest.h"

#define BSS_SIZE (1024 * 1024)

static uint64_t big[BSS_SIZE / sizeof(uint64_t)];

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    for (size_t i = 0; i < GUEST_ARRAY_SIZE(big); i++) {
        if (big[i] != 0) {
            guest_printf("FAILURE: .bss word %zu at %p is 0x%lx, not zero\n",
                         i, (void *)&big[i], big[i]);
            return GUEST_EXIT_FAILURE;
        }
    }
    big[0] = 1;
    big[GUEST_ARRAY_SIZE(big) - 1] = 2;
    if (*(volatile uint64_t *)&big[0] != 1 ||
        *(volatile uint64_t *)&big[GUEST_ARRAY_SIZE(big) - 1] != 2) {
        guest_printf("FAILURE: .bss is not writable\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
