/*
 * maxdevices: declares the maximum of 63 block devices (storage0 to
 * storage62) and acquires the first and the last.
 */
#include "guest.h"

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    static const struct {
        const char *name;
        guest_handle_t handle;
    } devices[] = { { "storage0", 1 }, { "storage62", 63 } };

    for (size_t i = 0; i < GUEST_ARRAY_SIZE(devices); i++) {
        guest_handle_t h;
        struct guest_block_info bi;
        if (guest_block_acquire(devices[i].name, &h, &bi) != GUEST_OK) {
            guest_printf("FAILURE: block device '%s' not found\n",
                         devices[i].name);
            return GUEST_EXIT_FAILURE;
        }
        if (h != devices[i].handle) {
            guest_printf("FAILURE: '%s' has handle %lu, expected %lu\n",
                         devices[i].name, h, devices[i].handle);
            return GUEST_EXIT_FAILURE;
        }
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
