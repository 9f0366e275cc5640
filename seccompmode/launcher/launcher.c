/*
 * The spt launch stage: a constructor that runs before the Go runtime of
 * ntender starts and turns the process into a Solo5 spt guest.
 *
 * The Go side (image.go) writes a launch image to a sealed memfd, clears
 * FD_CLOEXEC on that memfd and on the device fds, and re-executes
 * ntender with NTL_ENV_VAR naming the memfd. In the new process this
 * constructor finds the variable and never returns: it closes every other
 * fd, maps and fills guest memory, installs the seccomp filter and jumps
 * to the guest entry point. The process then has one thread and no Go
 * runtime, as the upstream solo5-spt tender has.
 *
 * Any problem before the filter is installed ends the process with one
 * line on stderr and exit status 1. After the filter is installed the
 * only system calls made are the guest's own.
 */
#if !defined(__linux__) || !defined(__x86_64__)
#error "the spt launcher supports only Linux on x86_64"
#endif

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "image.h"

/* The largest image accepted: a unikernel file is at most 1 GiB. */
#define NTL_MAX_IMAGE_SIZE (2ULL << 30)
/* The top of the x86_64 user address space with 4-level paging. */
#define NTL_MAX_MEM_SIZE 0x7ffffffff000ULL
#define NTL_MAX_SEGMENTS 1024ULL
/* 63 devices plus the epoll fd and the timerfd, with room to spare. */
#define NTL_MAX_FDS 1024ULL
/* The kernel rejects longer filters (BPF_MAXINSNS). */
#define NTL_MAX_FILTER 4096ULL

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *format, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "ntender: spt launch: ");
    va_list ap;

    va_start(ap, format);
    vsnprintf(line + n, sizeof line - n, format, ap);
    va_end(ap);
    size_t len = strlen(line);
    if (len < sizeof line - 1) {
        line[len++] = '\n';
    } else {
        line[sizeof line - 2] = '\n';
        len = sizeof line - 1;
    }
    /* Best effort: there is nothing to do if stderr is gone. */
    ssize_t written = write(2, line, len);
    (void)written;
    _exit(1);
}

static void __attribute__((noreturn)) fail_errno(const char *what, int err)
{
    fail("%s: %s", what, strerror(err));
}

/* Parses a non-negative decimal int with no sign, spaces or suffix. */
static int parse_fd(const char *s)
{
    long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > INT_MAX)
            return -1;
    }
    return (int)v;
}

/*
 * Returns whether [offset, offset + count * size) lies inside an image of
 * image_size bytes, without overflow.
 */
static int in_image(uint64_t image_size, uint64_t offset, uint64_t count,
                    uint64_t size)
{
    if (offset > image_size)
        return 0;
    if (size != 0 && count > (image_size - offset) / size)
        return 0;
    return 1;
}

static void check_header(const struct ntl_header *h, uint64_t image_size)
{
    if (memcmp(h->magic, NTL_MAGIC, NTL_MAGIC_SIZE) != 0)
        fail("launch image has an unknown format; the ntender binary may "
             "have been replaced after it wrote the image");
    if (h->image_size != image_size)
        fail("launch image size is %llu bytes, the header records %llu",
             (unsigned long long)image_size,
             (unsigned long long)h->image_size);

    if (h->mem_size % NTL_PAGE_SIZE != 0 || h->mem_size <= NTL_GUEST_MIN_BASE ||
        h->mem_size > NTL_MAX_MEM_SIZE)
        fail("invalid guest memory size 0x%llx: it must be a multiple of "
             "0x%llx in (0x%llx, 0x%llx]",
             (unsigned long long)h->mem_size, NTL_PAGE_SIZE,
             NTL_GUEST_MIN_BASE, NTL_MAX_MEM_SIZE);
    if (h->entry < NTL_GUEST_MIN_BASE || h->entry >= h->mem_size)
        fail("invalid entry point 0x%llx: it must be in [0x%llx, 0x%llx)",
             (unsigned long long)h->entry, NTL_GUEST_MIN_BASE,
             (unsigned long long)h->mem_size);
    if ((h->flags & ~NTL_FLAG_EXEC_HEAP) != 0)
        fail("launch image has unknown flags 0x%llx",
             (unsigned long long)h->flags);

    if (h->boot_size < 40 ||
        h->boot_size > NTL_GUEST_MIN_BASE - NTL_BOOT_INFO_ADDR ||
        !in_image(image_size, h->boot_offset, h->boot_size, 1))
        fail("invalid boot area: %llu bytes at offset %llu",
             (unsigned long long)h->boot_size,
             (unsigned long long)h->boot_offset);
    if (h->segments_count == 0 || h->segments_count > NTL_MAX_SEGMENTS ||
        h->segments_offset % 8 != 0 ||
        !in_image(image_size, h->segments_offset, h->segments_count,
                  sizeof(struct ntl_segment)))
        fail("invalid segment table: %llu entries at offset %llu",
             (unsigned long long)h->segments_count,
             (unsigned long long)h->segments_offset);
    if (h->fds_count > NTL_MAX_FDS || h->fds_offset % 8 != 0 ||
        !in_image(image_size, h->fds_offset, h->fds_count, sizeof(uint64_t)))
        fail("invalid fd table: %llu entries at offset %llu",
             (unsigned long long)h->fds_count,
             (unsigned long long)h->fds_offset);
    if (h->filter_count == 0 || h->filter_count > NTL_MAX_FILTER ||
        h->filter_offset % 8 != 0 ||
        !in_image(image_size, h->filter_offset, h->filter_count,
                  sizeof(struct sock_filter)))
        fail("invalid seccomp filter: %llu instructions at offset %llu",
             (unsigned long long)h->filter_count,
             (unsigned long long)h->filter_offset);
}

/*
 * Checks each segment against guest memory and the image, and that the
 * segments are sorted and do not share pages, as the ELF loader requires.
 */
static void check_segments(const struct ntl_header *h, const uint8_t *image)
{
    uint64_t previous_end = NTL_GUEST_MIN_BASE;

    for (uint64_t i = 0; i < h->segments_count; i++) {
        struct ntl_segment s;

        memcpy(&s, image + h->segments_offset + i * sizeof s, sizeof s);
        if (s.start % NTL_PAGE_SIZE != 0 || s.end % NTL_PAGE_SIZE != 0 ||
            s.start < previous_end || s.start >= s.end ||
            s.end > h->mem_size || s.vaddr < s.start || s.vaddr > s.end ||
            s.filesz > s.end - s.vaddr)
            fail("segment %llu: invalid range [0x%llx, 0x%llx) with %llu "
                 "file bytes at 0x%llx in guest memory of 0x%llx bytes",
                 (unsigned long long)i, (unsigned long long)s.start,
                 (unsigned long long)s.end, (unsigned long long)s.filesz,
                 (unsigned long long)s.vaddr,
                 (unsigned long long)h->mem_size);
        if ((s.prot & ~(NTL_PF_R | NTL_PF_W | NTL_PF_X)) != 0 ||
            ((s.prot & NTL_PF_W) && (s.prot & NTL_PF_X)))
            fail("segment %llu: invalid protection flags 0x%llx",
                 (unsigned long long)i, (unsigned long long)s.prot);
        if (!in_image(h->image_size, s.data_offset, s.filesz, 1))
            fail("segment %llu: %llu file bytes at offset %llu lie outside "
                 "the launch image",
                 (unsigned long long)i, (unsigned long long)s.filesz,
                 (unsigned long long)s.data_offset);
        previous_end = s.end;
    }
}

/*
 * Closes every fd except 0, 1, 2 and the ascending list keep, which must
 * hold fds above 2. close_range(2) does it in a few calls; kernels before
 * 5.9 lack it, and then each fd up to the RLIMIT_NOFILE limit is closed.
 * NOTE: the tests run only the close_range path.
 */
static void close_other_fds(const uint64_t *keep, uint64_t count)
{
    unsigned int first = 3;

    for (uint64_t i = 0; i <= count; i++) {
        unsigned int last = (i < count) ? (unsigned int)keep[i] - 1 : ~0U;

        if (first <= last &&
            syscall(SYS_close_range, first, last, 0) != 0) {
            if (errno != ENOSYS)
                fail_errno("closing inherited file descriptors", errno);
            struct rlimit rl;
            if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                fail_errno("reading RLIMIT_NOFILE", errno);
            unsigned long top = rl.rlim_cur == RLIM_INFINITY
                                    ? (unsigned long)INT_MAX
                                    : (unsigned long)rl.rlim_cur;
            for (unsigned long fd = first; fd <= last && fd < top; fd++)
                close((int)fd);
        }
        if (i < count)
            first = (unsigned int)keep[i] + 1;
    }
}

static void check_fds(const uint64_t *keep, uint64_t count, int image_fd)
{
    uint64_t previous = 2;

    for (uint64_t i = 0; i < count; i++) {
        if (keep[i] <= previous || keep[i] > INT_MAX ||
            keep[i] == (uint64_t)image_fd)
            fail("fd table entry %llu is invalid (%llu): fds must be "
                 "ascending, above 2 and not the launch image",
                 (unsigned long long)i, (unsigned long long)keep[i]);
        if (fcntl((int)keep[i], F_GETFD) == -1)
            fail("fd %llu of the guest is not open: %s",
                 (unsigned long long)keep[i], strerror(errno));
        previous = keep[i];
    }
}

/*
 * Signals that were ignored when this process image started, before the
 * Go runtime installed its handlers. execve resets handled signals to
 * SIG_DFL but keeps ignored ones. Without this record, a signal that
 * ntender's parent ignored would get its default action in the guest,
 * unlike under solo5-spt. An example is SIGQUIT for a background job of a
 * non-interactive shell.
 */
static uint64_t initially_ignored;

static void record_ignored_signals(void)
{
    for (int sig = 1; sig <= 64; sig++) {
        struct sigaction sa;

        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            initially_ignored |= 1ULL << (sig - 1);
    }
}

uint64_t ntl_initially_ignored_signals(void)
{
    return initially_ignored;
}

static void ignore_signals(uint64_t mask)
{
    for (int sig = 1; sig <= 64; sig++) {
        if (!(mask & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        /* Signals the C library reserves for itself reject changes. */
        if (sigaction(sig, &sa, NULL) != 0 && errno != EINVAL)
            fail("ignoring signal %d: %s", sig, strerror(errno));
    }
}

static int to_mmap_prot(uint64_t pf)
{
    return ((pf & NTL_PF_R) ? PROT_READ : 0) |
           ((pf & NTL_PF_W) ? PROT_WRITE : 0) |
           ((pf & NTL_PF_X) ? PROT_EXEC : 0);
}

/*
 * Maps guest memory as solo5-spt does: one private anonymous region from
 * NTL_HOST_MEM_BASE to mem_size, so guest address X is host address X and
 * [0, NTL_HOST_MEM_BASE) stays unmapped to catch NULL dereferences.
 * MAP_FIXED_NOREPLACE rejects the range if anything of this process (the
 * executable when ntender is not position-independent, or a library) sits
 * there, where MAP_FIXED would silently replace it.
 */
static void map_guest(const struct ntl_header *h)
{
    int prot = PROT_READ | PROT_WRITE;

    if (h->flags & NTL_FLAG_EXEC_HEAP)
        prot |= PROT_EXEC;
    size_t size = h->mem_size - NTL_HOST_MEM_BASE;
    void *want = (void *)NTL_HOST_MEM_BASE;
    void *mem = mmap(want, size, prot,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mem == MAP_FAILED) {
        if (errno == EEXIST)
            fail("guest memory [0x%llx, 0x%llx) overlaps a mapping of the "
                 "ntender process; build ntender with -buildmode=pie or "
                 "lower --mem",
                 NTL_HOST_MEM_BASE, (unsigned long long)h->mem_size);
        fail("mapping %llu bytes of guest memory at 0x%llx: %s",
             (unsigned long long)size, NTL_HOST_MEM_BASE, strerror(errno));
    }
    if (mem != want) {
        /* A kernel before 4.17 treats MAP_FIXED_NOREPLACE as a hint. */
        fail("mapping guest memory: the kernel placed it at %p instead of "
             "0x%llx (Linux 4.17 or later is required)",
             mem, NTL_HOST_MEM_BASE);
    }
}

static void load_guest(const struct ntl_header *h, const uint8_t *image)
{
    memcpy((void *)NTL_BOOT_INFO_ADDR, image + h->boot_offset, h->boot_size);

    /* Memory past filesz is already zero: the mapping is fresh. */
    for (uint64_t i = 0; i < h->segments_count; i++) {
        struct ntl_segment s;

        memcpy(&s, image + h->segments_offset + i * sizeof s, sizeof s);
        memcpy((void *)s.vaddr, image + s.data_offset, s.filesz);
    }
    for (uint64_t i = 0; i < h->segments_count; i++) {
        struct ntl_segment s;

        memcpy(&s, image + h->segments_offset + i * sizeof s, sizeof s);
        if (mprotect((void *)s.start, s.end - s.start,
                     to_mmap_prot(s.prot)) != 0)
            fail("protecting segment %llu [0x%llx, 0x%llx): %s",
                 (unsigned long long)i, (unsigned long long)s.start,
                 (unsigned long long)s.end, strerror(errno));
    }
}

/*
 * Switches to the guest stack and jumps to its entry point with the boot
 * info address in RDI, as solo5-spt does. The other general-purpose
 * registers are zeroed so that no host address reaches the guest in them.
 */
static void __attribute__((noreturn))
jump_to_guest(uint64_t stack, uint64_t entry, uint64_t boot_info)
{
    __asm__ volatile("mov %%rcx, %%rsp\n\t"
                     "xor %%ecx, %%ecx\n\t"
                     "xor %%edx, %%edx\n\t"
                     "xor %%ebx, %%ebx\n\t"
                     "xor %%esi, %%esi\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "xor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\t"
                     "xor %%r10d, %%r10d\n\t"
                     "xor %%r11d, %%r11d\n\t"
                     "xor %%r12d, %%r12d\n\t"
                     "xor %%r13d, %%r13d\n\t"
                     "xor %%r14d, %%r14d\n\t"
                     "xor %%r15d, %%r15d\n\t"
                     "jmp *%%rax\n\t"
                     :
                     : "c"(stack), "a"(entry), "D"(boot_info)
                     : "memory");
    __builtin_unreachable();
}

static void __attribute__((noreturn)) launch(int image_fd)
{
    /*
     * The seals guarantee that the image read here is the one the Go side
     * wrote, and F_GET_SEALS fails on anything but a memfd.
     */
    int want_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    int seals = fcntl(image_fd, F_GET_SEALS);
    if (seals == -1)
        fail("fd %d named by %s is not a memfd: %s", image_fd, NTL_ENV_VAR,
             strerror(errno));
    if ((seals & want_seals) != want_seals)
        fail("launch image memfd %d is not sealed (seals 0x%x)", image_fd,
             seals);

    struct stat st;
    if (fstat(image_fd, &st) != 0)
        fail_errno("reading the launch image size", errno);
    uint64_t image_size = (uint64_t)st.st_size;
    if (image_size < sizeof(struct ntl_header) ||
        image_size > NTL_MAX_IMAGE_SIZE)
        fail("launch image size %llu is outside [%zu, %llu]",
             (unsigned long long)image_size, sizeof(struct ntl_header),
             NTL_MAX_IMAGE_SIZE);
    const uint8_t *image =
        mmap(NULL, image_size, PROT_READ, MAP_PRIVATE, image_fd, 0);
    if (image == MAP_FAILED)
        fail_errno("mapping the launch image", errno);

    struct ntl_header h;
    memcpy(&h, image, sizeof h);
    check_header(&h, image_size);
    check_segments(&h, image);

    /* The offset is 8-aligned (check_header) and the mapping page-aligned. */
    const uint64_t *keep = (const uint64_t *)(image + h.fds_offset);
    check_fds(keep, h.fds_count, image_fd);
    close_other_fds(keep, h.fds_count);

    /*
     * With READ_IMPLIES_EXEC every readable mapping would be executable,
     * which defeats the W^X protection of the guest segments. NOTE: on
     * x86_64 Linux 6.18 the flag does not survive execve of a 64-bit
     * binary, and setarch -X has no effect. No test can reach this
     * check, which stays as solo5-spt has it.
     */
    int persona = personality(0xffffffff);
    if (persona == -1)
        fail_errno("reading the process personality", errno);
    if (persona & READ_IMPLIES_EXEC)
        fail("the process personality has READ_IMPLIES_EXEC, which makes "
             "all readable guest memory executable; run ntender without it");

    ignore_signals(h.ignored_signals);
    map_guest(&h);
    load_guest(&h, image);

    /*
     * The filter moves to a mapping of its own so that the image can be
     * unmapped, leaving the guest only the filter to read. The stack
     * would do as well, but 32 KiB of it may not be there under a small
     * RLIMIT_STACK.
     */
    size_t filter_size = h.filter_count * sizeof(struct sock_filter);
    struct sock_filter *filter = mmap(NULL, filter_size, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (filter == MAP_FAILED)
        fail_errno("allocating memory for the seccomp filter", errno);
    memcpy(filter, image + h.filter_offset, filter_size);
    struct sock_fprog prog = {
        .len = (unsigned short)h.filter_count,
        .filter = filter,
    };
    uint64_t mem_size = h.mem_size;
    uint64_t entry = h.entry;
    if (munmap((void *)image, image_size) != 0)
        fail_errno("unmapping the launch image", errno);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail_errno("setting no_new_privs", errno);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        fail_errno("installing the seccomp filter", errno);

    /* x86_64: RSP as right after a call, 16-byte aligned minus 8. */
    jump_to_guest(mem_size - 8, entry, NTL_BOOT_INFO_ADDR);
}

/*
 * Runs before the Go runtime starts: a cgo executable starts at the C
 * library's _start, which runs the constructors and then calls main, where
 * the Go runtime begins. Without the variable this is an ordinary ntender
 * process, and the constructor only records the ignored signals.
 */
__attribute__((constructor)) static void ntender_spt_launch(int argc,
                                                            char **argv)
{
    const char *value = getenv(NTL_ENV_VAR);

    if (value == NULL) {
        record_ignored_signals();
        return;
    }
    int fd = parse_fd(value);
    if (fd < 0)
        fail("%s=%s is not a file descriptor number", NTL_ENV_VAR, value);

    /*
     * The process was executed as /proc/self/exe, so its name (comm) is
     * "exe". Name it after argv[0], which is the name ntender was started
     * with, so that ps and pgrep find the guest process as they find
     * solo5-spt. glibc passes argc and argv to ELF constructors.
     */
    if (argc > 0 && argv != NULL && argv[0] != NULL) {
        const char *base = strrchr(argv[0], '/');
        (void)prctl(PR_SET_NAME, base != NULL ? base + 1 : argv[0], 0, 0, 0);
    }
    launch(fd);
}
