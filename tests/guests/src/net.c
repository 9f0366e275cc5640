/*
 * net: replies to ARP and ICMP echo requests on "service0".
 * Arguments: [IPV4 | --ipv4=IPV4/PREFIX] [--ipv4-gateway=IPV4] [limit N].
 * The address defaults to 10.0.0.2. The --ipv4 forms are what MirageOS
 * unikernels take, so runnc's default arguments reach this guest. The
 * prefix and gateway are checked but unused, because the guest replies
 * only on its own subnet. With "limit N" the guest exits with SUCCESS
 * after N echo requests.
 */
#include "args.h"
#include "netecho.h"

#define IPV4_OPTION "--ipv4="
#define GATEWAY_OPTION "--ipv4-gateway="

/* Parse "A.B.C.D/P" into ip; P must be 0 to 32. */
static bool parse_ip_prefix(const char *s, uint8_t ip[4])
{
    char address[16];
    size_t n = 0;
    while (s[n] != '\0' && s[n] != '/' && n < sizeof(address) - 1) {
        address[n] = s[n];
        n++;
    }
    if (s[n] != '/')
        return false;
    address[n] = '\0';

    const char *p = s + n + 1;
    unsigned prefix = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 2) {
        prefix = prefix * 10 + (unsigned)(*p++ - '0');
        digits++;
    }
    return digits > 0 && *p == '\0' && prefix <= 32 &&
           netecho_parse_ip(address, ip);
}

int guest_main(const struct guest_start_info *info)
{
    struct netecho_if nif = { .name = "service0", .ip = { 10, 0, 0, 2 } };
    uint64_t limit = 0;
    const char *cursor = info->cmdline;
    char word[48];
    uint8_t gateway[4];

    while (guest_next_word(&cursor, word, sizeof(word))) {
        if (strcmp(word, "limit") == 0)
            limit = args_parse_limit(&cursor);
        else if (strncmp(word, IPV4_OPTION, sizeof(IPV4_OPTION) - 1) == 0) {
            if (!parse_ip_prefix(word + sizeof(IPV4_OPTION) - 1, nif.ip))
                guest_abort("invalid argument '%s', expected "
                            IPV4_OPTION "A.B.C.D/PREFIX", word);
        } else if (strncmp(word, GATEWAY_OPTION,
                           sizeof(GATEWAY_OPTION) - 1) == 0) {
            if (!netecho_parse_ip(word + sizeof(GATEWAY_OPTION) - 1, gateway))
                guest_abort("invalid argument '%s', expected "
                            GATEWAY_OPTION "A.B.C.D", word);
        } else if (!netecho_parse_ip(word, nif.ip))
            guest_abort("invalid argument '%s', expected IPV4, "
                        IPV4_OPTION "IPV4/PREFIX or limit N", word);
    }

    netecho_run(&nif, 1, limit);
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
