/* hello: prints its command line; SUCCESS iff it is "Hello_Solo5". */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    guest_printf("\n**** Solo5 standalone test_hello ****\n\n");
    guest_printf("Hello, World\nCommand line is: '%s'\n", info->cmdline);
    if (strcmp(info->cmdline, "Hello_Solo5") != 0) {
        guest_printf("FAILURE: expected the command line 'Hello_Solo5'\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
