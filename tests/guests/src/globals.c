/* globals: checks that initialised .data is loaded and writable. */
#include "guest.h"

static int number = 42;
static char text[] = "initial";

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    if (number != 42 || strcmp(text, "initial") != 0) {
        guest_printf("FAILURE: .data not initialised\n");
        return GUEST_EXIT_FAILURE;
    }
    number++;
    memcpy(text, "changed", sizeof(text));
    if (*(volatile int *)&number != 43 || strcmp(text, "changed") != 0) {
        guest_printf("FAILURE: .data not writable\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
