/* netecho.c: an ARP and ICMP echo responder for the network guests. */
#include "netecho.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define IP_PROTO_ICMP 1
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

/* Large enough for a tap MTU of 9000 plus the Ethernet header. */
#define FRAME_SIZE 9216

static uint8_t frame[FRAME_SIZE];

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The Internet checksum (RFC 1071) of size bytes at p. */
static uint16_t checksum(const uint8_t *p, size_t size)
{
    uint32_t sum = 0;

    for (; size > 1; p += 2, size -= 2)
        sum += get16(p);
    if (size)
        sum += (uint32_t)p[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

bool netecho_parse_ip(const char *s, uint8_t ip[4])
{
    for (int i = 0; i < 4; i++) {
        unsigned v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            v = v * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (digits == 0 || v > 255)
            return false;
        ip[i] = (uint8_t)v;
        if (i < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/* Turn the Ethernet header around: reply to the sender from mac. */
static void swap_ethernet(uint8_t *eth, const uint8_t *mac)
{
    memcpy(eth, eth + 6, 6);
    memcpy(eth + 6, mac, 6);
}

/* Turn an ARP request for our address into the reply, in place. Returns
 * false when the frame needs no reply. */
static bool handle_arp(struct netecho_if *nif, uint8_t *eth, size_t size)
{
    uint8_t *arp = eth + GUEST_NET_HLEN;

    if (size < GUEST_NET_HLEN + 28)
        return false;
    if (get16(arp) != 1 || get16(arp + 2) != ETHERTYPE_IPV4 ||
        arp[4] != 6 || arp[5] != 4 || get16(arp + 6) != ARP_REQUEST)
        return false;
    if (memcmp(arp + 24, nif->ip, 4) != 0)
        return false;

    swap_ethernet(eth, nif->info.mac_address);
    put16(arp + 6, ARP_REPLY);
    memcpy(arp + 18, arp + 8, 10); /* sender becomes target */
    memcpy(arp + 8, nif->info.mac_address, 6);
    memcpy(arp + 14, nif->ip, 4);
    return true;
}

/* Turn an ICMP echo request for our address into the reply, in place. */
static bool handle_ipv4(struct netecho_if *nif, uint8_t *eth, size_t size)
{
    uint8_t *ip = eth + GUEST_NET_HLEN;

    if (size < GUEST_NET_HLEN + 20 || (ip[0] >> 4) != 4)
        return false;
    size_t header = (size_t)(ip[0] & 0xf) * 4;
    size_t total = get16(ip + 2);
    if (header < 20 || total < header + 8 || GUEST_NET_HLEN + total > size)
        return false;
    if (ip[9] != IP_PROTO_ICMP || memcmp(ip + 16, nif->ip, 4) != 0)
        return false;
    if ((get16(ip + 6) & 0x3fff) != 0)
        return false; /* a fragment */
    uint8_t *icmp = ip + header;
    if (icmp[0] != ICMP_ECHO_REQUEST)
        return false;

    swap_ethernet(eth, nif->info.mac_address);
    memcpy(ip + 16, ip + 12, 4);
    memcpy(ip + 12, nif->ip, 4);
    /* Swapping the addresses leaves the IP header checksum unchanged. */
    icmp[0] = ICMP_ECHO_REPLY;
    put16(icmp + 2, 0);
    put16(icmp + 2, checksum(icmp, total - header));
    nif->echo_requests++;
    return true;
}

/* Read every frame waiting on nif and send the replies. */
static void drain(struct netecho_if *nif)
{
    for (;;) {
        size_t size;
        guest_result_t rc = guest_net_read(nif->handle, frame, sizeof(frame),
                                           &size);
        if (rc == GUEST_AGAIN)
            return;
        if (rc != GUEST_OK)
            guest_abort("net read on %s failed: result %d", nif->name, rc);
        if (size < GUEST_NET_HLEN)
            continue;

        bool reply = false;
        switch (get16(frame + 12)) {
        case ETHERTYPE_ARP:
            reply = handle_arp(nif, frame, size);
            break;
        case ETHERTYPE_IPV4:
            reply = handle_ipv4(nif, frame, size);
            break;
        }
        if (!reply)
            continue;
        rc = guest_net_write(nif->handle, frame, size);
        if (rc != GUEST_OK)
            guest_abort("net write on %s failed: result %d", nif->name, rc);
    }
}

static bool limit_reached(const struct netecho_if *ifs, size_t count,
                          uint64_t limit)
{
    if (limit == 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (ifs[i].echo_requests < limit)
            return false;
    }
    return true;
}

void netecho_run(struct netecho_if *ifs, size_t count, uint64_t limit)
{
    for (size_t i = 0; i < count; i++) {
        struct netecho_if *nif = &ifs[i];
        if (guest_net_acquire(nif->name, &nif->handle, &nif->info) != GUEST_OK)
            guest_abort("net device '%s' not found", nif->name);
        if (nif->info.mtu + GUEST_NET_HLEN > FRAME_SIZE)
            guest_abort("MTU %zu of '%s' exceeds the frame buffer (%d bytes)",
                        nif->info.mtu, nif->name, FRAME_SIZE);
        const uint8_t *m = nif->info.mac_address;
        guest_printf("%s: MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %zu, "
                     "IPv4 %u.%u.%u.%u\n",
                     nif->name, m[0], m[1], m[2], m[3], m[4], m[5],
                     nif->info.mtu, nif->ip[0], nif->ip[1], nif->ip[2],
                     nif->ip[3]);
    }
    guest_printf("Serving ping\n");

    while (!limit_reached(ifs, count, limit)) {
        guest_handle_set_t ready;
        guest_yield(guest_clock_monotonic() + 1000000000ULL, &ready);
        for (size_t i = 0; i < count; i++) {
            if (ready & (1ULL << ifs[i].handle))
                drain(&ifs[i]);
        }
    }
    for (size_t i = 0; i < count; i++)
        guest_printf("%s: replied to %lu echo requests\n", ifs[i].name,
                     ifs[i].echo_requests);
}
