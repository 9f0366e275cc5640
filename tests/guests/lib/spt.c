/*
 * spt.c: the spt target. Every service is a raw Linux system call; the
 * tender's seccomp filter allows exactly the ones used here, with these
 * file descriptors and argument values.
 */
#include "platform.h"
#include "spt_abi.h"

RUNTIME_DATA static int epollfd;
RUNTIME_DATA static int timerfd;

static long sys_write(int fd, const void *buf, size_t n)
{
    return spt_syscall4(SYS_write, fd, (long)buf, (long)n, 0);
}

static guest_time_t clock_ns(int clock)
{
    struct spt_timespec ts;
    long rc = spt_syscall4(SYS_clock_gettime, clock, (long)&ts, 0, 0);

    if (rc != 0)
        guest_abort("clock_gettime(%d) failed: %ld", clock, rc);
    return (guest_time_t)ts.tv_sec * 1000000000ULL + (guest_time_t)ts.tv_nsec;
}

__attribute__((noreturn)) void spt_main(const struct spt_boot_info *bi)
{
    /* TLS accesses before guest_set_tls_base() must fault. */
    platform_set_tls_base(0);
    epollfd = bi->epollfd;
    timerfd = bi->timerfd;

    struct runtime_boot boot = {
        .target = "spt",
        .cmdline = (const char *)(uintptr_t)bi->cmdline,
        .mem_size = bi->mem_size,
        .mft = (struct mft *)(uintptr_t)bi->mft,
    };
    runtime_start(&boot);
}

void platform_console_write(const char *buf, size_t size)
{
    sys_write(1, buf, size);
}

void platform_exit(int status, void *cookie)
{
    (void)cookie;
    spt_syscall4(SYS_exit_group, status, 0, 0, 0);
    for (;;)
        __asm__ __volatile__("pause");
}

guest_time_t platform_clock_monotonic(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

guest_time_t platform_clock_wall(void)
{
    return clock_ns(CLOCK_REALTIME);
}

void platform_yield(guest_time_t deadline, guest_handle_set_t *ready_set)
{
    struct spt_epoll_event events[MFT_MAX_ENTRIES];
    int nevents = 1; /* the timerfd */

    for (uint32_t i = 1; i < runtime_mft->entries; i++) {
        if (runtime_mft->e[i].type == MFT_DEV_NET_BASIC)
            nevents++;
    }

    /*
     * An all-zero it_value would disarm the timer, so 1 ns is ORed in.
     * The timerfd is never read: arming it again resets its count.
     */
    struct spt_itimerspec it = {
        .it_value = {
            .tv_sec = (int64_t)(deadline / 1000000000ULL),
            .tv_nsec = (int64_t)(deadline % 1000000000ULL) | 1,
        },
    };
    long rc = spt_syscall4(SYS_timerfd_settime, timerfd, TFD_TIMER_ABSTIME,
                           (long)&it, 0);
    if (rc != 0)
        guest_abort("timerfd_settime failed: %ld", rc);

    do {
        rc = spt_syscall6(SYS_epoll_pwait, epollfd, (long)events, nevents, -1,
                          0, 0);
    } while (rc == -EINTR);
    if (rc < 0)
        guest_abort("epoll_pwait failed: %ld", rc);

    guest_handle_set_t ready = 0;
    for (long i = 0; i < rc; i++) {
        /* Besides the timerfd, the tender tags each tap with its handle. */
        if (events[i].data >= MFT_MAX_ENTRIES)
            continue;
        ready |= 1ULL << events[i].data;
    }
    *ready_set = ready;
}

guest_result_t platform_set_tls_base(uintptr_t base)
{
    long rc = spt_syscall4(SYS_arch_prctl, ARCH_SET_FS, (long)base, 0, 0);

    return rc == 0 ? GUEST_OK : GUEST_EINVAL;
}

/*
 * The seccomp filter allows only pread64/pwrite64 of exactly one block at
 * an offset of at most capacity - block_size, so larger requests become
 * one system call per block and the capacity is checked here first.
 */
guest_result_t platform_block_io(bool write, guest_handle_t handle,
                                 struct mft_entry *e, uint64_t offset,
                                 void *buf, size_t size)
{
    (void)handle;
    uint64_t capacity = e->u.block_basic.capacity;
    uint64_t bs = e->u.block_basic.block_size;

    if (offset > capacity || size > capacity - offset)
        return GUEST_EINVAL;
    for (size_t done = 0; done < size; done += bs) {
        long nr = write ? SYS_pwrite64 : SYS_pread64;
        long rc = spt_syscall4(nr, e->b.hostfd, (long)((char *)buf + done),
                               (long)bs, (long)(offset + done));
        if (rc != (long)bs)
            return GUEST_EUNSPEC;
    }
    return GUEST_OK;
}

guest_result_t platform_net_write(guest_handle_t handle, struct mft_entry *e,
                                  const void *buf, size_t size)
{
    (void)handle;
    long rc = sys_write(e->b.hostfd, buf, size);

    return rc == (long)size ? GUEST_OK : GUEST_EUNSPEC;
}

guest_result_t platform_net_read(guest_handle_t handle, struct mft_entry *e,
                                 void *buf, size_t size, size_t *read_size)
{
    (void)handle;
    long rc = spt_syscall4(SYS_read, e->b.hostfd, (long)buf, (long)size, 0);

    if (rc == -EAGAIN)
        return GUEST_AGAIN;
    if (rc < 0)
        return GUEST_EUNSPEC;
    *read_size = (size_t)rc;
    return GUEST_OK;
}
