/*
 * output: writes 4143 bytes in one console write, which is more than one
 * page, so a tender must not truncate or split it. The last line is a
 * marker a test can look for.
 */
#include "guest.h"

#define OUTPUT_SIZE 4143

static char buf[OUTPUT_SIZE];

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    static const char marker[] = "\nEND OF 4143 BYTES\n";
    size_t body = OUTPUT_SIZE - (sizeof(marker) - 1);

    for (size_t i = 0; i < body; i++)
        buf[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
    memcpy(buf + body, marker, sizeof(marker) - 1);
    guest_console_write(buf, sizeof(buf));
    return GUEST_EXIT_SUCCESS;
}
