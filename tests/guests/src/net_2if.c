/*
 * net_2if: replies to ARP and ICMP echo requests on "service0"
 * (10.0.0.2) and "service1" (10.1.0.2). With "limit N" the guest exits
 * with SUCCESS once each interface has replied to N echo requests.
 */
#include "args.h"
#include "netecho.h"

int guest_main(const struct guest_start_info *info)
{
    struct netecho_if ifs[2] = {
        { .name = "service0", .ip = { 10, 0, 0, 2 } },
        { .name = "service1", .ip = { 10, 1, 0, 2 } },
    };
    uint64_t limit = 0;
    const char *cursor = info->cmdline;
    char word[32];

    while (guest_next_word(&cursor, word, sizeof(word))) {
        if (strcmp(word, "limit") != 0)
            guest_abort("invalid argument '%s', expected limit N", word);
        limit = args_parse_limit(&cursor);
    }

    netecho_run(ifs, GUEST_ARRAY_SIZE(ifs), limit);
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
