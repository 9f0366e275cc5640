/* mtu: prints the MTU the tender reports for "service0". */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    guest_handle_t handle;
    struct guest_net_info net;

    if (guest_net_acquire("service0", &handle, &net) != GUEST_OK) {
        guest_printf("FAILURE: net device 'service0' not found\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("MTU is %zu\n", net.mtu);
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
