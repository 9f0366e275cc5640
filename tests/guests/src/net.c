/*
 * net: replies to ARP and ICMP echo requests on "service0".
 * Arguments: [IPV4] [limit N]. The address defaults to 10.0.0.2. With
 * "limit N" the guest exits with SUCCESS after N echo requests.
 */
#include "args.h"
#include "netecho.h"

int guest_main(const struct guest_start_info *info)
{
    struct netecho_if nif = { .name = "service0", .ip = { 10, 0, 0, 2 } };
    uint64_t limit = 0;
    const char *cursor = info->cmdline;
    char word[32];

    while (guest_next_word(&cursor, word, sizeof(word))) {
        if (strcmp(word, "limit") == 0)
            limit = args_parse_limit(&cursor);
        else if (!netecho_parse_ip(word, nif.ip))
            guest_abort("invalid argument '%s', expected IPV4 or limit N",
                        word);
    }

    netecho_run(&nif, 1, limit);
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
