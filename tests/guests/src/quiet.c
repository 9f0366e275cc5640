/*
 * quiet: run with --solo5:quiet, it checks that the runtime stripped the
 * option from the command line. The runtime's own messages ("Solo5: ...")
 * are silenced; SUCCESS is ordinary guest output and still appears.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    if (info->cmdline[0] != '\0') {
        guest_printf("FAILURE: command line is '%s', expected it empty\n",
                     info->cmdline);
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
