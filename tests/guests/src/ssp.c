/*
 * ssp: overflows a stack buffer. The stack protector must detect it when
 * the function returns, and the runtime aborts with status 255.
 */
#include "guest.h"

static volatile size_t overflow_size = 64;

__attribute__((noinline)) static void smash(void)
{
    char buf[16];
    volatile char *p = buf;

    for (size_t i = 0; i < overflow_size; i++)
        p[i] = 'x';
}

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    smash();
    guest_printf("FAILURE: stack overflow went undetected\n");
    return GUEST_EXIT_FAILURE;
}
