/* netecho.h: an ARP and ICMP echo responder shared by the network guests. */
#ifndef GUEST_NETECHO_H
#define GUEST_NETECHO_H

#include "guest.h"

struct netecho_if {
    const char *name;  /* manifest device name */
    uint8_t ip[4];     /* IPv4 address of the guest on this interface */
    guest_handle_t handle;
    struct guest_net_info info;
    uint64_t echo_requests; /* ICMP echo requests replied to */
};

/* Parse a dotted-quad IPv4 address. */
bool netecho_parse_ip(const char *s, uint8_t ip[4]);

/*
 * Acquire every interface, then reply to ARP requests and ICMP echo
 * requests for their addresses. With limit > 0 it returns once every
 * interface has replied to limit echo requests. With limit 0 it never
 * returns. Aborts when a device is missing or I/O fails.
 */
void netecho_run(struct netecho_if *ifs, size_t count, uint64_t limit);

#endif /* GUEST_NETECHO_H */
