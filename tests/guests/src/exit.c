/* exit: exits with the status given as its only argument, 0 to 254. */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    uint64_t status;

    if (!guest_parse_uint(info->cmdline, &status) || status > 254)
        guest_abort("expected an exit status from 0 to 254, got '%s'",
                    info->cmdline);
    guest_exit((int)status);
}
