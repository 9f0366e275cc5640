/*
 * blk: writes a pattern to every 10th block of "storage" and to its last
 * block, reads each back, and checks that requests at the capacity, of
 * block size +-1 and at a misaligned offset are rejected. Works with any
 * block size up to 4096.
 */
#include "guest.h"

#define MAX_BLOCK_SIZE 4096

static uint8_t wbuf[MAX_BLOCK_SIZE + 1];
static uint8_t rbuf[MAX_BLOCK_SIZE + 1];

static void fill(uint64_t block, size_t size)
{
    for (size_t i = 0; i < size; i++)
        wbuf[i] = (uint8_t)('0' + (block + i) % 64);
}

static bool check_block(guest_handle_t h, uint64_t block, size_t bs)
{
    uint64_t offset = block * bs;

    fill(block, bs);
    if (guest_block_write(h, offset, wbuf, bs) != GUEST_OK) {
        guest_printf("FAILURE: write of block %lu failed\n", block);
        return false;
    }
    memset(rbuf, 0, bs);
    if (guest_block_read(h, offset, rbuf, bs) != GUEST_OK) {
        guest_printf("FAILURE: read of block %lu failed\n", block);
        return false;
    }
    if (memcmp(wbuf, rbuf, bs) != 0) {
        guest_printf("FAILURE: block %lu reads back different data\n", block);
        return false;
    }
    return true;
}

/* Expect a read and a write of size bytes at offset to be rejected. */
static bool check_rejected(guest_handle_t h, const char *what,
                           uint64_t offset, size_t size)
{
    if (guest_block_write(h, offset, wbuf, size) == GUEST_OK) {
        guest_printf("FAILURE: write %s succeeded\n", what);
        return false;
    }
    if (guest_block_read(h, offset, rbuf, size) == GUEST_OK) {
        guest_printf("FAILURE: read %s succeeded\n", what);
        return false;
    }
    return true;
}

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    guest_handle_t h;
    struct guest_block_info bi;

    if (guest_block_acquire("storage", &h, &bi) != GUEST_OK) {
        guest_printf("FAILURE: block device 'storage' not found\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("storage: capacity %lu bytes, block size %lu bytes\n",
                 bi.capacity, bi.block_size);
    size_t bs = bi.block_size;
    if (bs == 0 || bs > MAX_BLOCK_SIZE || bi.capacity % bs != 0 ||
        bi.capacity < bs) {
        guest_printf("FAILURE: unexpected block geometry\n");
        return GUEST_EXIT_FAILURE;
    }
    uint64_t blocks = bi.capacity / bs;

    for (uint64_t block = 0; block < blocks; block += 10) {
        if (!check_block(h, block, bs))
            return GUEST_EXIT_FAILURE;
    }
    if (!check_block(h, blocks - 1, bs))
        return GUEST_EXIT_FAILURE;

    if (!check_rejected(h, "at the capacity", bi.capacity, bs) ||
        !check_rejected(h, "of block size + 1", 0, bs + 1) ||
        !check_rejected(h, "of block size - 1", 0, bs - 1) ||
        !check_rejected(h, "at a misaligned offset", bs / 2, bs))
        return GUEST_EXIT_FAILURE;

    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
