/*
 * hostile_blk: breaks the block device contract of "storage". hvt:
 * hypercalls whose pointers or lengths leave guest memory, and requests
 * past the capacity, which must come back as EINVAL. spt: pread64 and
 * pwrite64 calls outside what the seccomp filter allows.
 */
#include "hostile.h"
#include "mft.h"

static guest_handle_t handle;
static struct guest_block_info block;

static void acquire(void)
{
    if (guest_block_acquire("storage", &handle, &block) != GUEST_OK)
        guest_abort("block device 'storage' not found");
}

static uint8_t buf[2 * 4096];

#ifdef GUEST_HVT
#include "hvt_abi.h"

static int block_call(int nr, uint64_t offset, uint64_t data, uint64_t len)
{
    volatile struct hvt_hc_block arg = {
        .handle = handle,
        .offset = offset,
        .data = data,
        .len = len,
    };
    hvt_hypercall(nr, &arg);
    return arg.ret;
}

static void blkread_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_BLOCK_READ, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void blkwrite_arg_outside(const struct guest_start_info *info)
{
    (void)info;
    hvt_hypercall(HVT_HYPERCALL_BLOCK_WRITE, (void *)HOSTILE_OUTSIDE_GPA32);
}

static void blkread_data_outside(const struct guest_start_info *info)
{
    (void)info;
    block_call(HVT_HYPERCALL_BLOCK_READ, 0, HOSTILE_OUTSIDE_ADDR,
               block.block_size);
}

static void blkwrite_data_outside(const struct guest_start_info *info)
{
    (void)info;
    block_call(HVT_HYPERCALL_BLOCK_WRITE, 0, HOSTILE_OUTSIDE_ADDR,
               block.block_size);
}

/* The buffer starts half a block below the end of guest memory. */
static void blkread_len_past_end(const struct guest_start_info *info)
{
    block_call(HVT_HYPERCALL_BLOCK_READ, 0,
               hostile_mem_size(info) - block.block_size / 2,
               block.block_size);
}

/* data + len wraps around to 1. */
static void blkwrite_overflow(const struct guest_start_info *info)
{
    (void)info;
    uint64_t data = (uint64_t)(uintptr_t)buf;
    block_call(HVT_HYPERCALL_BLOCK_WRITE, 0, data, UINT64_MAX - data + 2);
}

/* Requests past the capacity are the guest's mistake: EINVAL, no exit. */
static void blk_capacity(const struct guest_start_info *info)
{
    (void)info;
    uint64_t bs = block.block_size;
    uint64_t data = (uint64_t)(uintptr_t)buf;
    struct {
        const char *what;
        int nr;
        uint64_t offset, len;
    } requests[] = {
        { "read at the capacity", HVT_HYPERCALL_BLOCK_READ, block.capacity,
          bs },
        { "write at the capacity", HVT_HYPERCALL_BLOCK_WRITE, block.capacity,
          bs },
        { "read across the capacity", HVT_HYPERCALL_BLOCK_READ,
          block.capacity - bs, 2 * bs },
        { "write far past the capacity", HVT_HYPERCALL_BLOCK_WRITE,
          UINT64_MAX - bs + 1, bs },
    };

    for (size_t i = 0; i < GUEST_ARRAY_SIZE(requests); i++) {
        int ret = block_call(requests[i].nr, requests[i].offset, data,
                             requests[i].len);
        guest_printf("%s: result %d\n", requests[i].what, ret);
        if (ret != GUEST_EINVAL) {
            guest_printf("FAILURE: %s returned %d, expected EINVAL (%d)\n",
                         requests[i].what, ret, GUEST_EINVAL);
            guest_exit(GUEST_EXIT_FAILURE);
        }
    }
    guest_printf("SUCCESS\n");
    guest_exit(GUEST_EXIT_SUCCESS);
}

static const struct hostile_case cases[] = {
    { "blkread-arg-outside", blkread_arg_outside },
    { "blkwrite-arg-outside", blkwrite_arg_outside },
    { "blkread-data-outside", blkread_data_outside },
    { "blkwrite-data-outside", blkwrite_data_outside },
    { "blkread-len-past-end", blkread_len_past_end },
    { "blkwrite-overflow", blkwrite_overflow },
    { "blk-capacity", blk_capacity },
};
#endif /* GUEST_HVT */

#ifdef GUEST_SPT
#include "spt_abi.h"

extern struct mft *runtime_mft;

static int hostfd(void)
{
    return runtime_mft->e[handle].b.hostfd;
}

/* One block at the capacity, skipping the runtime's capacity check. */
static void pread_past_capacity(const struct guest_start_info *info)
{
    (void)info;
    long rc = spt_syscall4(SYS_pread64, hostfd(), (long)buf,
                           (long)block.block_size, (long)block.capacity);
    guest_printf("pread64 returned %ld\n", rc);
}

static void pread_two_blocks(const struct guest_start_info *info)
{
    (void)info;
    long rc = spt_syscall4(SYS_pread64, hostfd(), (long)buf,
                           (long)(2 * block.block_size), 0);
    guest_printf("pread64 returned %ld\n", rc);
}

static void pwrite_short(const struct guest_start_info *info)
{
    (void)info;
    long rc = spt_syscall4(SYS_pwrite64, hostfd(), (long)buf,
                           (long)(block.block_size - 1), 0);
    guest_printf("pwrite64 returned %ld\n", rc);
}

static const struct hostile_case cases[] = {
    { "pread-past-capacity", pread_past_capacity },
    { "pread-two-blocks", pread_two_blocks },
    { "pwrite-short", pwrite_short },
};
#endif /* GUEST_SPT */

int guest_main(const struct guest_start_info *info)
{
    acquire();
    if (block.block_size > sizeof(buf) / 2)
        guest_abort("block size %lu exceeds the buffer", block.block_size);
    return hostile_main(info, cases, GUEST_ARRAY_SIZE(cases));
}
