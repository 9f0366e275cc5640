/*
 * guest.h: the API of the ntender test guests.
 *
 * The runtime behind it is a minimal, freestanding implementation of the
 * Solo5 guest contract for two targets, hvt (KVM, hypercalls through port
 * I/O) and spt (seccomp, raw Linux system calls). The functions mimic the
 * semantics of the Solo5 public API (solo5.h) so that the guests behave
 * the way the upstream test unikernels do, but their names carry a guest_
 * prefix because this is not the Solo5 library.
 *
 * A guest provides guest_main(). The runtime calls it once the CPU state,
 * the log options and the memory size are set up and checked, and passes
 * its return value to guest_exit().
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes, numbered as solo5_result_t. */
typedef enum {
    GUEST_OK = 0,
    GUEST_AGAIN = 1,
    GUEST_EINVAL = 2,
    GUEST_EUNSPEC = 3,
} guest_result_t;

/* Exit statuses, numbered as the SOLO5_EXIT_* constants. */
#define GUEST_EXIT_SUCCESS 0
#define GUEST_EXIT_FAILURE 1
#define GUEST_EXIT_ABORT 255

typedef uint64_t guest_time_t;     /* nanoseconds */
typedef uint64_t guest_handle_t;   /* manifest index of a device */
typedef uint64_t guest_handle_set_t; /* bit i set = handle i */

struct guest_start_info {
    const char *cmdline;  /* command line without the --solo5: options */
    uintptr_t heap_start; /* _end rounded up to 4 KiB */
    size_t heap_size;     /* mem_size - heap_start; the stack is at its top */
};

/* Implemented by each guest. */
int guest_main(const struct guest_start_info *info);

/* Console and process control. */
void guest_console_write(const char *buf, size_t size);
__attribute__((noreturn)) void guest_exit(int status);
__attribute__((noreturn, format(printf, 1, 2)))
void guest_abort(const char *fmt, ...);

/* Clocks, in nanoseconds. */
guest_time_t guest_clock_monotonic(void);
guest_time_t guest_clock_wall(void);

/*
 * Block until the monotonic clock reaches deadline or a network device has
 * input. If ready_set is not NULL it receives one bit per ready handle.
 */
void guest_yield(guest_time_t deadline, guest_handle_set_t *ready_set);

/* Set the FS base, the x86-64 thread pointer. */
guest_result_t guest_set_tls_base(uintptr_t base);

/* Block devices (BLOCK_BASIC manifest entries). */
struct guest_block_info {
    uint64_t capacity;   /* bytes */
    uint64_t block_size; /* bytes */
};
guest_result_t guest_block_acquire(const char *name, guest_handle_t *handle,
                                   struct guest_block_info *info);
/*
 * Single-block I/O as in Solo5: offset must be a multiple of the block
 * size and size must equal it, else GUEST_EINVAL.
 */
guest_result_t guest_block_write(guest_handle_t handle, uint64_t offset,
                                 const void *buf, size_t size);
guest_result_t guest_block_read(guest_handle_t handle, uint64_t offset,
                                void *buf, size_t size);
/*
 * Multi-block I/O for benchmarks: size must be a non-zero multiple of the
 * block size. hvt issues one hypercall for the whole range. spt issues one
 * system call per block, because the spt seccomp filter allows only
 * block-sized transfers.
 */
guest_result_t guest_block_write_many(guest_handle_t handle, uint64_t offset,
                                      const void *buf, size_t size);
guest_result_t guest_block_read_many(guest_handle_t handle, uint64_t offset,
                                     void *buf, size_t size);

/* Network devices (NET_BASIC manifest entries). */
#define GUEST_NET_ALEN 6  /* Ethernet address length */
#define GUEST_NET_HLEN 14 /* Ethernet header length */
struct guest_net_info {
    uint8_t mac_address[GUEST_NET_ALEN];
    size_t mtu; /* bytes, without the Ethernet header */
};
guest_result_t guest_net_acquire(const char *name, guest_handle_t *handle,
                                 struct guest_net_info *info);
guest_result_t guest_net_write(guest_handle_t handle, const void *buf,
                               size_t size);
/* Returns GUEST_AGAIN when no frame is waiting. */
guest_result_t guest_net_read(guest_handle_t handle, void *buf, size_t size,
                              size_t *read_size);

/*
 * Thread-local storage. guest_tls_size() returns the size of one TLS block.
 * guest_tls_init() fills the block at addr, which must be 16-byte aligned,
 * with the .tdata image and a zeroed .tbss. It returns the thread pointer
 * to pass to guest_set_tls_base().
 */
size_t guest_tls_size(void);
uintptr_t guest_tls_init(void *addr);

/* Formatted output: %d %i %u %x %X %c %s %p %%, with the l, ll and z
 * length modifiers, a field width and the '0' and '-' flags. */
__attribute__((format(printf, 1, 2))) void guest_printf(const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
int guest_snprintf(char *buf, size_t size, const char *fmt, ...);
int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* Log levels of the --solo5: options; messages above the level are dropped. */
enum guest_log_level {
    GUEST_LOG_QUIET = 0,
    GUEST_LOG_ERROR = 1,
    GUEST_LOG_WARN = 2,
    GUEST_LOG_INFO = 3,
    GUEST_LOG_DEBUG = 4,
};
__attribute__((format(printf, 2, 3)))
void guest_log(enum guest_log_level level, const char *fmt, ...);

/* Freestanding string functions; gcc may also emit calls to the mem* ones. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/*
 * Split the next whitespace-separated word off *cursor into word (at most
 * size - 1 characters). Returns false when no word is left.
 */
bool guest_next_word(const char **cursor, char *word, size_t size);
/* Parse a decimal unsigned number; returns false on anything else. */
bool guest_parse_uint(const char *s, uint64_t *value);

#define GUEST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* GUEST_H */
