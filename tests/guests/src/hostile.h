/*
 * hostile.h: the case table of the hostile guests. Each guest takes the
 * name of one case as its argument and runs it. A case breaks the ABI
 * contract in one way. Unless the case's comment states otherwise, the tender must
 * stop the guest. A guest that gets past its case prints FAILURE and exits
 * with status 1.
 */
#ifndef GUEST_HOSTILE_H
#define GUEST_HOSTILE_H

#include "guest.h"

struct hostile_case {
    const char *name;
    void (*run)(const struct guest_start_info *info);
};

/* A guest physical address below 4 GiB and above any test guest's memory,
 * for argument structs, whose address the hypercall passes in 32 bits. */
#define HOSTILE_OUTSIDE_GPA32 0xfffff000ULL
/* An address far above any guest memory, for buffers inside structs. */
#define HOSTILE_OUTSIDE_ADDR (1ULL << 40)

static inline uint64_t hostile_mem_size(const struct guest_start_info *info)
{
    return info->heap_start + info->heap_size;
}

static inline int hostile_main(const struct guest_start_info *info,
                               const struct hostile_case *cases,
                               size_t count)
{
    /* With 4 GiB of memory, HOSTILE_OUTSIDE_GPA32 would be a valid
     * address and the cases built on it would prove nothing. */
    if (hostile_mem_size(info) > HOSTILE_OUTSIDE_GPA32)
        guest_abort("hostile guests need less than 4 GiB of memory, got "
                    "0x%lx bytes",
                    hostile_mem_size(info));
    for (size_t i = 0; i < count; i++) {
        if (strcmp(info->cmdline, cases[i].name) != 0)
            continue;
        guest_printf("hostile: running case %s\n", cases[i].name);
        cases[i].run(info);
        guest_printf("FAILURE: the tender let case %s continue\n",
                     cases[i].name);
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("FAILURE: unknown case '%s'; cases:", info->cmdline);
    for (size_t i = 0; i < count; i++)
        guest_printf(" %s", cases[i].name);
    guest_printf("\n");
    return GUEST_EXIT_FAILURE;
}

#endif /* GUEST_HOSTILE_H */
