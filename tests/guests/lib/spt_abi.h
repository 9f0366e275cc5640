/*
 * spt_abi.h: the spt boot information (Solo5 spt ABI version 2, x86_64)
 * and raw Linux system calls. spt guests make system calls directly; the
 * tender's seccomp filter decides which ones survive.
 */
#ifndef GUEST_SPT_ABI_H
#define GUEST_SPT_ABI_H

#include <stdint.h>

/* Boot information at RDI on entry. */
struct spt_boot_info {
    uint64_t mem_size;
    uint64_t kernel_end;
    uint64_t cmdline; /* address of the NUL-terminated command line */
    uint64_t mft;     /* address of the manifest copy */
    int32_t epollfd;  /* epoll set holding the timerfd and the tap fds */
    int32_t timerfd;  /* CLOCK_MONOTONIC timerfd for yield */
};

_Static_assert(sizeof(struct spt_boot_info) == 40, "spt_boot_info size");

/* x86_64 Linux system call numbers. */
#define SYS_read 0
#define SYS_write 1
#define SYS_pread64 17
#define SYS_pwrite64 18
#define SYS_dup 32
#define SYS_arch_prctl 158
#define SYS_clock_gettime 228
#define SYS_exit_group 231
#define SYS_epoll_pwait 281
#define SYS_timerfd_settime 286

#define ARCH_SET_FS 0x1002
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define TFD_TIMER_ABSTIME 1
#define EINTR 4
#define EAGAIN 11

/* The epoll data of the tender's timerfd in the epoll set. */
#define SPT_INTERNAL_TIMERFD 0xfffffffeU

struct spt_timespec {
    int64_t tv_sec;
    int64_t tv_nsec;
};

struct spt_itimerspec {
    struct spt_timespec it_interval;
    struct spt_timespec it_value;
};

/* struct epoll_event is packed on x86_64. */
struct spt_epoll_event {
    uint32_t events;
    uint64_t data;
} __attribute__((packed));

_Static_assert(sizeof(struct spt_epoll_event) == 12, "epoll_event size");

static inline long spt_syscall4(long nr, long a0, long a1, long a2, long a3)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10)
                         : "rcx", "r11", "memory");
    return ret;
}

static inline long spt_syscall6(long nr, long a0, long a1, long a2, long a3,
                                long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10),
                           "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    return ret;
}

#endif /* GUEST_SPT_ABI_H */
