/*
 * hostile_net (hvt only): breaks the network device contract of
 * "service0" with hypercalls whose pointers or lengths leave guest memory,
 * and with a frame larger than the MTU allows. The oversized frame is the
 * guest's mistake rather than an attack on the tender, so there the
 * expected outcome is an EINVAL result, after which the guest exits with
 * SUCCESS.
 */
#include "hostile.h"
#include "hvt_abi.h"

static guest_handle_t handle;
static struct guest_net_info net;

/* An Ethernet frame larger than any tap MTU a test uses. */
static uint8_t frame[9000 + GUEST_NET_HLEN + 1];

static int net_call(int nr, uint64_t data, uint64_t len)
{
    volatile struct hvt_hc_net arg = {
        .handle = handle,
        .data = data,
        .len = len,
    };
    hvt_hypercall(nr, &arg);
    return arg.ret;
}

static void netwrite_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_NET_WRITE, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void netread_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_NET_READ, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void netwrite_data_outside(const struct guest_start_info *info)
{
    (void)info;
    net_call(HVT_HYPERCALL_NET_WRITE, HOSTILE_OUTSIDE_ADDR, 64);
}

static void netread_data_outside(const struct guest_start_info *info)
{
    (void)info;
    net_call(HVT_HYPERCALL_NET_READ, HOSTILE_OUTSIDE_ADDR, sizeof(frame));
}

/* The frame starts 32 bytes below the end of guest memory. */
static void netwrite_len_past_end(const struct guest_start_info *info)
{
    net_call(HVT_HYPERCALL_NET_WRITE, hostile_mem_size(info) - 32, 64);
}

/* data + len wraps around to 1. */
static void netread_overflow(const struct guest_start_info *info)
{
    (void)info;
    uint64_t data = (uint64_t)(uintptr_t)frame;
    net_call(HVT_HYPERCALL_NET_READ, data, UINT64_MAX - data + 2);
}

/* A broadcast frame one byte longer than the MTU allows; see above. */
static void net_over_mtu(const struct guest_start_info *info)
{
    (void)info;
    size_t size = net.mtu + GUEST_NET_HLEN + 1;
    if (size > sizeof(frame))
        guest_abort("MTU %zu exceeds the frame buffer", net.mtu);
    memset(frame, 0xff, GUEST_NET_ALEN);
    memcpy(frame + GUEST_NET_ALEN, net.mac_address, GUEST_NET_ALEN);
    frame[12] = 0x88; /* EtherType 0x88b5, local experimental */
    frame[13] = 0xb5;
    int ret = net_call(HVT_HYPERCALL_NET_WRITE, (uint64_t)(uintptr_t)frame,
                       size);
    guest_printf("net write of %zu bytes with MTU %zu: result %d\n", size,
                 net.mtu, ret);
    if (ret == GUEST_EINVAL) {
        guest_printf("SUCCESS\n");
        guest_exit(GUEST_EXIT_SUCCESS);
    }
}

static const struct hostile_case cases[] = {
    { "netwrite-arg-outside", netwrite_arg_outside },
    { "netread-arg-outside", netread_arg_outside },
    { "netwrite-data-outside", netwrite_data_outside },
    { "netread-data-outside", netread_data_outside },
    { "netwrite-len-past-end", netwrite_len_past_end },
    { "netread-overflow", netread_overflow },
    { "net-over-mtu", net_over_mtu },
};

int guest_main(const struct guest_start_info *info)
{
    if (guest_net_acquire("service0", &handle, &net) != GUEST_OK)
        guest_abort("net device 'service0' not found");
    return hostile_main(info, cases, GUEST_ARRAY_SIZE(cases));
}
