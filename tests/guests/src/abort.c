/* abort: aborts, which must end the guest with status 255. */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    guest_abort("abort guest called guest_abort()");
}
