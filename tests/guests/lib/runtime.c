/*
 * runtime.c: the target-independent part of the guest runtime: the
 * --solo5: log options, the memory check, exit and abort, stack protector
 * support, device lookup in the manifest, and TLS blocks.
 */
#include "platform.h"

/* Linker script symbols. */
extern char _end[];
extern char _tdata_start[], _tdata_end[], _tbss_start[], _tbss_end[];

/* The bindings need this much heap above the image, as Solo5's do. */
#define MIN_HEAP_SIZE (512 * 1024)
#define PAGE_SIZE 4096

RUNTIME_DATA struct mft *runtime_mft;
RUNTIME_DATA static enum guest_log_level log_level = GUEST_LOG_INFO;

/*
 * Stack protector canary, read by code compiled with
 * -mstack-protector-guard=global. The entry code of each target sets it
 * from the TSC before calling any C code.
 */
RUNTIME_DATA uintptr_t __stack_chk_guard;

static void vprint_raw(const char *fmt, va_list ap)
{
    char buf[512];
    int n = guest_vsnprintf(buf, sizeof(buf), fmt, ap);

    if (n >= (int)sizeof(buf))
        n = sizeof(buf) - 1;
    platform_console_write(buf, (size_t)n);
}

void runtime_raw_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_raw(fmt, ap);
    va_end(ap);
}

void guest_log(enum guest_log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vprint_raw(fmt, ap);
    va_end(ap);
}

void guest_console_write(const char *buf, size_t size)
{
    platform_console_write(buf, size);
}

void guest_exit(int status)
{
    guest_log(GUEST_LOG_INFO, "Solo5: solo5_exit(%d) called\n", status);
    platform_exit(status, NULL);
}

void guest_abort(const char *fmt, ...)
{
    va_list ap;

    runtime_raw_printf("Solo5: ABORT: ");
    va_start(ap, fmt);
    vprint_raw(fmt, ap);
    va_end(ap);
    runtime_raw_printf("\n");
    platform_exit(GUEST_EXIT_ABORT, NULL);
}

__attribute__((noreturn)) void __stack_chk_fail(void)
{
    runtime_raw_printf("Solo5: ABORT: Stack corruption detected\n");
    platform_exit(GUEST_EXIT_ABORT, NULL);
}

guest_time_t guest_clock_monotonic(void)
{
    return platform_clock_monotonic();
}

guest_time_t guest_clock_wall(void)
{
    return platform_clock_wall();
}

void guest_yield(guest_time_t deadline, guest_handle_set_t *ready_set)
{
    guest_handle_set_t ready = 0;

    platform_yield(deadline, &ready);
    if (ready_set)
        *ready_set = ready;
}

guest_result_t guest_set_tls_base(uintptr_t base)
{
    return platform_set_tls_base(base);
}

/*
 * Strip the leading --solo5: options from cmdline. Each one must be a
 * whole word, followed by whitespace or the end of the string.
 */
static const char *parse_log_options(const char *cmdline)
{
    static const struct {
        const char *option;
        enum guest_log_level level;
    } options[] = {
        { "--solo5:quiet", GUEST_LOG_QUIET },
        { "--solo5:error", GUEST_LOG_ERROR },
        { "--solo5:warn", GUEST_LOG_WARN },
        { "--solo5:info", GUEST_LOG_INFO },
        { "--solo5:debug", GUEST_LOG_DEBUG },
    };
    const char *p = cmdline;

    for (;;) {
        while (*p == ' ')
            p++;
        bool matched = false;
        for (size_t i = 0; i < GUEST_ARRAY_SIZE(options); i++) {
            size_t n = strlen(options[i].option);
            if (strncmp(p, options[i].option, n) == 0 &&
                (p[n] == ' ' || p[n] == '\0')) {
                log_level = options[i].level;
                p += n;
                matched = true;
                break;
            }
        }
        if (!matched)
            return p;
    }
}

void runtime_start(const struct runtime_boot *boot)
{
    struct guest_start_info info;

    runtime_mft = boot->mft;
    info.cmdline = parse_log_options(boot->cmdline);

    uintptr_t heap_start = ((uintptr_t)_end + PAGE_SIZE - 1) &
                           ~(uintptr_t)(PAGE_SIZE - 1);
    if (heap_start + MIN_HEAP_SIZE > boot->mem_size)
        guest_abort("Not enough memory (mem_size=0x%lx, heap starts at 0x%lx)",
                    boot->mem_size, heap_start);
    info.heap_start = heap_start;
    info.heap_size = boot->mem_size - heap_start;

    guest_log(GUEST_LOG_INFO,
              "Solo5: ntender test guest runtime, target %s, "
              "mem_size 0x%lx\n",
              boot->target, boot->mem_size);
    guest_log(GUEST_LOG_DEBUG, "Solo5: heap 0x%lx-0x%lx, manifest at %p\n",
              info.heap_start, info.heap_start + info.heap_size, boot->mft);

    guest_exit(guest_main(&info));
}

/*
 * Find the manifest entry of type with name. Returns its index (the
 * handle), or 0 if there is none. Using a declared device that the tender
 * did not attach is a tender bug, so it aborts.
 */
static guest_handle_t find_device(const char *name, uint32_t type)
{
    for (uint32_t i = 1; i < runtime_mft->entries; i++) {
        struct mft_entry *e = &runtime_mft->e[i];
        if (e->type != type || strcmp(e->name, name) != 0)
            continue;
        if (!e->attached)
            guest_abort("device '%s' is in the manifest but not attached",
                        name);
        return i;
    }
    return 0;
}

/* Return the entry for handle if it is an attached device of type. */
static struct mft_entry *device(guest_handle_t handle, uint32_t type)
{
    if (handle == 0 || handle >= runtime_mft->entries)
        return NULL;
    struct mft_entry *e = &runtime_mft->e[handle];
    if (e->type != type || !e->attached)
        return NULL;
    return e;
}

guest_result_t guest_block_acquire(const char *name, guest_handle_t *handle,
                                   struct guest_block_info *info)
{
    guest_handle_t h = find_device(name, MFT_DEV_BLOCK_BASIC);

    if (h == 0)
        return GUEST_EINVAL;
    struct mft_entry *e = &runtime_mft->e[h];
    *handle = h;
    info->capacity = e->u.block_basic.capacity;
    info->block_size = e->u.block_basic.block_size;
    return GUEST_OK;
}

static guest_result_t block_io(bool write, guest_handle_t handle,
                               uint64_t offset, void *buf, size_t size,
                               bool many)
{
    struct mft_entry *e = device(handle, MFT_DEV_BLOCK_BASIC);

    if (e == NULL)
        return GUEST_EINVAL;
    uint64_t bs = e->u.block_basic.block_size;
    if (bs == 0 || offset % bs != 0)
        return GUEST_EINVAL;
    if (many ? (size == 0 || size % bs != 0) : size != bs)
        return GUEST_EINVAL;
    return platform_block_io(write, handle, e, offset, buf, size);
}

guest_result_t guest_block_write(guest_handle_t handle, uint64_t offset,
                                 const void *buf, size_t size)
{
    return block_io(true, handle, offset, (void *)buf, size, false);
}

guest_result_t guest_block_read(guest_handle_t handle, uint64_t offset,
                                void *buf, size_t size)
{
    return block_io(false, handle, offset, buf, size, false);
}

guest_result_t guest_block_write_many(guest_handle_t handle, uint64_t offset,
                                      const void *buf, size_t size)
{
    return block_io(true, handle, offset, (void *)buf, size, true);
}

guest_result_t guest_block_read_many(guest_handle_t handle, uint64_t offset,
                                     void *buf, size_t size)
{
    return block_io(false, handle, offset, buf, size, true);
}

guest_result_t guest_net_acquire(const char *name, guest_handle_t *handle,
                                 struct guest_net_info *info)
{
    guest_handle_t h = find_device(name, MFT_DEV_NET_BASIC);

    if (h == 0)
        return GUEST_EINVAL;
    struct mft_entry *e = &runtime_mft->e[h];
    *handle = h;
    memcpy(info->mac_address, e->u.net_basic.mac, GUEST_NET_ALEN);
    info->mtu = e->u.net_basic.mtu;
    return GUEST_OK;
}

guest_result_t guest_net_write(guest_handle_t handle, const void *buf,
                               size_t size)
{
    struct mft_entry *e = device(handle, MFT_DEV_NET_BASIC);

    if (e == NULL)
        return GUEST_EINVAL;
    return platform_net_write(handle, e, buf, size);
}

guest_result_t guest_net_read(guest_handle_t handle, void *buf, size_t size,
                              size_t *read_size)
{
    struct mft_entry *e = device(handle, MFT_DEV_NET_BASIC);

    if (e == NULL)
        return GUEST_EINVAL;
    return platform_net_read(handle, e, buf, size, read_size);
}

/*
 * x86-64 TLS variant II: the thread pointer points just past the TLS
 * block and to a word that holds its own value. The linker script pads
 * .tbss to 16 bytes, so the block size equals the PT_TLS memory size
 * rounded the way the linker rounds it for local-exec offsets.
 */
size_t guest_tls_size(void)
{
    return (size_t)(_tbss_end - _tdata_start) + sizeof(uintptr_t);
}

uintptr_t guest_tls_init(void *addr)
{
    size_t block = (size_t)(_tbss_end - _tdata_start);
    size_t init = (size_t)(_tdata_end - _tdata_start);
    char *p = addr;

    memcpy(p, _tdata_start, init);
    memset(p + init, 0, block - init);
    uintptr_t tp = (uintptr_t)(p + block);
    *(uintptr_t *)tp = tp;
    return tp;
}
