/*
 * hostile: breaks the ABI without any devices. hvt: hypercalls whose
 * pointers or lengths leave guest memory, unknown hypercall numbers and
 * port accesses that are not 4-byte OUTs. spt: system calls the seccomp
 * filter must kill.
 */
#include "hostile.h"

#ifdef GUEST_HVT
#include "hvt_abi.h"

static void walltime_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_WALLTIME, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void puts_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_PUTS, (void *)HOSTILE_OUTSIDE_GPA32);
}

/* The PUTS struct starts 8 bytes below the end of guest memory. */
static void puts_arg_past_end(const struct guest_start_info *info)
{
    volatile uint64_t *arg = (uint64_t *)(hostile_mem_size(info) - 8);

    *arg = info->heap_start;
    hvt_hypercall(HVT_HYPERCALL_PUTS, arg);
}

static void puts_data_outside(const struct guest_start_info *info)
{
    (void)info;
    volatile struct hvt_hc_puts arg = { .data = HOSTILE_OUTSIDE_ADDR,
                                        .len = 1 };
    hvt_hypercall(HVT_HYPERCALL_PUTS, &arg);
}

static void puts_len_past_end(const struct guest_start_info *info)
{
    volatile struct hvt_hc_puts arg = { .data = info->heap_start,
                                        .len = info->heap_size + 4096 };
    hvt_hypercall(HVT_HYPERCALL_PUTS, &arg);
}

/* data + len wraps around to 1. */
static void puts_overflow(const struct guest_start_info *info)
{
    volatile struct hvt_hc_puts arg = {
        .data = info->heap_start,
        .len = UINT64_MAX - info->heap_start + 2,
    };
    hvt_hypercall(HVT_HYPERCALL_PUTS, &arg);
}

static void poll_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_POLL, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void halt_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_HALT, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void halt_cookie_outside(const struct guest_start_info *info)
{
    (void)info;
    volatile struct hvt_hc_halt arg = { .cookie = HOSTILE_OUTSIDE_ADDR,
                                        .exit_status = 0 };
    hvt_hypercall(HVT_HYPERCALL_HALT, &arg);
}

/* The tender may read 512 bytes from the cookie; only 256 are left. */
static void halt_cookie_past_end(const struct guest_start_info *info)
{
    volatile struct hvt_hc_halt arg = {
        .cookie = hostile_mem_size(info) - 256,
        .exit_status = 0,
    };
    hvt_hypercall(HVT_HYPERCALL_HALT, &arg);
}

static void hypercall_0(const struct guest_start_info *info)
{
    (void)info;
    volatile struct hvt_hc_walltime arg = { 0 };
    hvt_hypercall(0, &arg);
}

static void hypercall_9(const struct guest_start_info *info)
{
    (void)info;
    volatile struct hvt_hc_walltime arg = { 0 };
    hvt_hypercall(HVT_HYPERCALL_MAX, &arg);
}

static void port_in(const struct guest_start_info *info)
{
    (void)info;
    uint32_t value;
    __asm__ __volatile__("inl %1, %0"
                         : "=a"(value)
                         : "d"((uint16_t)(HVT_HYPERCALL_PIO_BASE +
                                          HVT_HYPERCALL_WALLTIME)));
    guest_printf("inl returned 0x%x\n", value);
}

static void port_outb(const struct guest_start_info *info)
{
    (void)info;
    __asm__ __volatile__("outb %0, %1"
                         :
                         : "a"((uint8_t)0),
                           "d"((uint16_t)(HVT_HYPERCALL_PIO_BASE +
                                          HVT_HYPERCALL_WALLTIME)));
}

static void port_outw(const struct guest_start_info *info)
{
    (void)info;
    __asm__ __volatile__("outw %0, %1"
                         :
                         : "a"((uint16_t)0),
                           "d"((uint16_t)(HVT_HYPERCALL_PIO_BASE +
                                          HVT_HYPERCALL_WALLTIME)));
}

/* A 4-byte OUT to a port below the hypercall range. */
static void port_other(const struct guest_start_info *info)
{
    (void)info;
    __asm__ __volatile__("outl %0, %1"
                         :
                         : "a"((uint32_t)0), "d"((uint16_t)0x400));
}

static const struct hostile_case cases[] = {
    { "walltime-arg-outside", walltime_arg_outside },
    { "puts-arg-outside", puts_arg_outside },
    { "puts-arg-past-end", puts_arg_past_end },
    { "puts-data-outside", puts_data_outside },
    { "puts-len-past-end", puts_len_past_end },
    { "puts-overflow", puts_overflow },
    { "poll-arg-outside", poll_arg_outside },
    { "halt-arg-outside", halt_arg_outside },
    { "halt-cookie-outside", halt_cookie_outside },
    { "halt-cookie-past-end", halt_cookie_past_end },
    { "hypercall-0", hypercall_0 },
    { "hypercall-9", hypercall_9 },
    { "port-in", port_in },
    { "port-outb", port_outb },
    { "port-outw", port_outw },
    { "port-other", port_other },
};
#endif /* GUEST_HVT */

#ifdef GUEST_SPT
#include "spt_abi.h"

static void dup(const struct guest_start_info *info)
{
    (void)info;
    long rc = spt_syscall4(SYS_dup, 1, 0, 0, 0);
    guest_printf("dup returned %ld\n", rc);
}

static void write_stderr(const struct guest_start_info *info)
{
    (void)info;
    static const char msg[] = "hostile: this line went to stderr\n";
    spt_syscall4(SYS_write, 2, (long)msg, sizeof(msg) - 1, 0);
}

static const struct hostile_case cases[] = {
    { "dup", dup },
    { "write-stderr", write_stderr },
};
#endif /* GUEST_SPT */

int guest_main(const struct guest_start_info *info)
{
    return hostile_main(info, cases, GUEST_ARRAY_SIZE(cases));
}
