/*
 * hvt_abi.h: the hvt boot information and hypercall argument layouts
 * (Solo5 hvt ABI version 2, x86_64). A hypercall is a 32-bit OUT of the
 * guest physical address of its argument struct to port
 * HVT_HYPERCALL_PIO_BASE + number.
 */
#ifndef GUEST_HVT_ABI_H
#define GUEST_HVT_ABI_H

#include <stdint.h>

#define HVT_HYPERCALL_PIO_BASE 0x500

enum hvt_hypercall {
    HVT_HYPERCALL_WALLTIME = 1,
    HVT_HYPERCALL_PUTS = 2,
    HVT_HYPERCALL_POLL = 3,
    HVT_HYPERCALL_BLOCK_WRITE = 4,
    HVT_HYPERCALL_BLOCK_READ = 5,
    HVT_HYPERCALL_NET_WRITE = 6,
    HVT_HYPERCALL_NET_READ = 7,
    HVT_HYPERCALL_HALT = 8,
    HVT_HYPERCALL_MAX = 9,
};

/* Boot information at RDI on entry. The fields from host_features on are
 * present only with v0.11+ tenders and are not used by these guests. */
struct hvt_boot_info {
    uint64_t mem_size;       /* guest-usable bytes; the stack starts here */
    uint64_t kernel_end;
    uint64_t cpu_cycle_freq; /* TSC frequency in Hz */
    uint64_t cmdline;        /* GPA of the NUL-terminated command line */
    uint64_t mft;            /* GPA of the manifest copy */
};

struct hvt_hc_walltime {
    uint64_t nsecs; /* out: CLOCK_REALTIME in ns */
};

struct hvt_hc_puts {
    uint64_t data; /* GPA */
    uint64_t len;
};

struct hvt_hc_poll {
    uint64_t timeout_nsecs; /* in: relative */
    uint64_t ready_set;     /* out */
    int32_t ret;            /* out: number of ready devices */
};

struct hvt_hc_block {
    uint64_t handle;
    uint64_t offset;
    uint64_t data; /* GPA */
    uint64_t len;
    int32_t ret; /* out: guest_result_t */
};

struct hvt_hc_net {
    uint64_t handle;
    uint64_t data; /* GPA */
    uint64_t len;  /* read: in buffer size, out frame length */
    int32_t ret;   /* out: guest_result_t */
};

struct hvt_hc_halt {
    uint64_t cookie; /* GPA of up to 512 bytes for the tender, or 0 */
    int32_t exit_status;
};

/* The trap frame a CPU exception passes as the HALT cookie. */
struct hvt_trap_frame {
    uint64_t cr2;
    uint64_t ec;
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};

_Static_assert(sizeof(struct hvt_boot_info) == 40, "hvt_boot_info size");
_Static_assert(sizeof(struct hvt_hc_walltime) == 8, "walltime size");
_Static_assert(sizeof(struct hvt_hc_puts) == 16, "puts size");
_Static_assert(sizeof(struct hvt_hc_poll) == 24, "poll size");
_Static_assert(__builtin_offsetof(struct hvt_hc_poll, ret) == 16, "poll ret");
_Static_assert(sizeof(struct hvt_hc_block) == 40, "block size");
_Static_assert(__builtin_offsetof(struct hvt_hc_block, ret) == 32,
               "block ret");
_Static_assert(sizeof(struct hvt_hc_net) == 32, "net size");
_Static_assert(__builtin_offsetof(struct hvt_hc_net, ret) == 24, "net ret");
_Static_assert(sizeof(struct hvt_hc_halt) == 16, "halt size");
_Static_assert(sizeof(struct hvt_trap_frame) == 56, "trap frame size");

/*
 * Issue hypercall nr with the argument struct at arg. The struct must lie
 * below 4 GiB because only 32 bits of its address reach the tender.
 */
static inline void hvt_hypercall(int nr, volatile void *arg)
{
    __asm__ __volatile__("outl %0, %1"
                         :
                         : "a"((uint32_t)(uintptr_t)arg),
                           "d"((uint16_t)(HVT_HYPERCALL_PIO_BASE + nr))
                         : "memory");
}

#endif /* GUEST_HVT_ABI_H */
