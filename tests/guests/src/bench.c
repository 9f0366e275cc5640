/*
 * bench: workloads for the benchmarks. One binary, three manifests: bench
 * (no devices), bench_blk ("storage") and bench_net ("service0").
 *
 *   calls N            N monotonic clock reads, N wall clock reads, then N
 *                      1-byte console writes
 *   blkread SIZE N     N reads of SIZE bytes, sequential, wrapping at the
 *   blkwrite SIZE N    capacity; SIZE is a multiple of the block size
 *   echo [IPV4] [limit N]   the net guest's ARP and ICMP echo responder
 *
 * Each workload prints the time it took, as the guest measured it, and
 * SUCCESS.
 */
#include "args.h"
#include "netecho.h"

/* Heap kept free for the stack, which grows down from the top of memory. */
#define STACK_RESERVE (64 * 1024)

static uint64_t parse_number(const char **cursor, const char *what)
{
    char word[32];
    uint64_t value;

    if (!guest_next_word(cursor, word, sizeof(word)) ||
        !guest_parse_uint(word, &value) || value == 0)
        guest_abort("expected a positive number for %s", what);
    return value;
}

static void bench_calls(const char **cursor)
{
    uint64_t n = parse_number(cursor, "N");

    guest_time_t start = guest_clock_monotonic();
    for (uint64_t i = 0; i < n; i++)
        guest_clock_monotonic();
    guest_time_t clock_ns = guest_clock_monotonic() - start;

    /* hvt reads the wall clock with a hypercall and spt with a system
     * call, so this is the call of the same kind under both. */
    start = guest_clock_monotonic();
    for (uint64_t i = 0; i < n; i++)
        guest_clock_wall();
    guest_time_t wall_ns = guest_clock_monotonic() - start;

    start = guest_clock_monotonic();
    for (uint64_t i = 0; i < n; i++)
        guest_console_write(".", 1);
    guest_time_t write_ns = guest_clock_monotonic() - start;

    guest_printf("\nbench calls: %lu clock reads in %lu ns, "
                 "%lu wall clock reads in %lu ns, "
                 "%lu console writes in %lu ns\n",
                 n, clock_ns, n, wall_ns, n, write_ns);
}

static void bench_block(const struct guest_start_info *info, bool write,
                        const char **cursor)
{
    uint64_t size = parse_number(cursor, "SIZE");
    uint64_t n = parse_number(cursor, "N");
    guest_handle_t h;
    struct guest_block_info bi;

    if (guest_block_acquire("storage", &h, &bi) != GUEST_OK)
        guest_abort("block device 'storage' not found");
    if (size % bi.block_size != 0 || size > bi.capacity)
        guest_abort("SIZE %lu must be a multiple of the block size %lu and "
                    "at most the capacity %lu",
                    size, bi.block_size, bi.capacity);
    if (info->heap_size < STACK_RESERVE ||
        size > info->heap_size - STACK_RESERVE)
        guest_abort("SIZE %lu does not fit in the heap (%zu bytes); "
                    "give the guest more memory",
                    size, info->heap_size);
    uint8_t *buf = (uint8_t *)info->heap_start;
    for (uint64_t i = 0; i < size; i++)
        buf[i] = (uint8_t)i;

    uint64_t offset = 0;
    guest_time_t start = guest_clock_monotonic();
    for (uint64_t i = 0; i < n; i++) {
        if (offset + size > bi.capacity)
            offset = 0;
        guest_result_t rc = write
            ? guest_block_write_many(h, offset, buf, size)
            : guest_block_read_many(h, offset, buf, size);
        if (rc != GUEST_OK)
            guest_abort("block %s at offset %lu failed: result %d",
                        write ? "write" : "read", offset, rc);
        offset += size;
    }
    guest_time_t elapsed = guest_clock_monotonic() - start;
    guest_printf("bench %s: %lu requests of %lu bytes in %lu ns\n",
                 write ? "blkwrite" : "blkread", n, size, elapsed);
}

static void bench_echo(const char **cursor)
{
    struct netecho_if nif = { .name = "service0", .ip = { 10, 0, 0, 2 } };
    uint64_t limit = 0;
    char word[32];

    while (guest_next_word(cursor, word, sizeof(word))) {
        if (strcmp(word, "limit") == 0)
            limit = args_parse_limit(cursor);
        else if (!netecho_parse_ip(word, nif.ip))
            guest_abort("invalid argument '%s', expected IPV4 or limit N",
                        word);
    }
    guest_time_t start = guest_clock_monotonic();
    netecho_run(&nif, 1, limit);
    guest_printf("bench echo: %lu echo requests in %lu ns\n",
                 nif.echo_requests, guest_clock_monotonic() - start);
}

int guest_main(const struct guest_start_info *info)
{
    const char *cursor = info->cmdline;
    char mode[16];

    if (!guest_next_word(&cursor, mode, sizeof(mode)))
        mode[0] = '\0';
    if (strcmp(mode, "calls") == 0)
        bench_calls(&cursor);
    else if (strcmp(mode, "blkread") == 0)
        bench_block(info, false, &cursor);
    else if (strcmp(mode, "blkwrite") == 0)
        bench_block(info, true, &cursor);
    else if (strcmp(mode, "echo") == 0)
        bench_echo(&cursor);
    else
        guest_abort("usage: bench calls N | blkread SIZE N | "
                    "blkwrite SIZE N | echo [IPV4] [limit N]");
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
