/*
 * platform.h: what each target (hvt.c, spt.c) provides to the common
 * runtime, and what the runtime provides to the targets.
 */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include "guest.h"
#include "mft.h"

/* Provided by the target. */
void platform_console_write(const char *buf, size_t size);
/* cookie is passed to the hvt HALT hypercall; spt ignores it. */
__attribute__((noreturn)) void platform_exit(int status, void *cookie);
guest_time_t platform_clock_monotonic(void);
guest_time_t platform_clock_wall(void);
void platform_yield(guest_time_t deadline, guest_handle_set_t *ready_set);
guest_result_t platform_set_tls_base(uintptr_t base);
/*
 * Transfer size bytes (a non-zero multiple of the block size, at an
 * aligned offset) between buf and the device. The runtime has checked the
 * handle and the alignment, not the capacity.
 */
guest_result_t platform_block_io(bool write, guest_handle_t handle,
                                 struct mft_entry *e, uint64_t offset,
                                 void *buf, size_t size);
guest_result_t platform_net_write(guest_handle_t handle, struct mft_entry *e,
                                  const void *buf, size_t size);
guest_result_t platform_net_read(guest_handle_t handle, struct mft_entry *e,
                                 void *buf, size_t size, size_t *read_size);

/*
 * Places runtime state in .data rather than .bss. The tender loads .data
 * and checks it against the memory size but never checks .bss, so the
 * runtime can still report "Not enough memory" when a guest's .bss does
 * not fit.
 */
#define RUNTIME_DATA __attribute__((section(".data")))

/* Provided by the runtime. */
struct runtime_boot {
    const char *target; /* "hvt" or "spt", for the banner */
    const char *cmdline;
    uint64_t mem_size;
    struct mft *mft;
};
/* Run the guest: log options, memory check, banner, guest_main, exit. */
__attribute__((noreturn)) void runtime_start(const struct runtime_boot *boot);
/* The manifest handed over by the tender, for the targets' own use. */
extern struct mft *runtime_mft;
/* Write a message regardless of the log level (used for ABORT lines). */
__attribute__((format(printf, 1, 2))) void runtime_raw_printf(const char *fmt,
                                                             ...);

#endif /* GUEST_PLATFORM_H */
