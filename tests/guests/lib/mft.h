/*
 * mft.h: the Solo5 manifest (MFT1 note payload, format version 1) as the
 * tender leaves it in guest memory, with the device fields it fills in.
 */
#ifndef GUEST_MFT_H
#define GUEST_MFT_H

#include <stdint.h>

#define MFT_VERSION 1
#define MFT_MAX_ENTRIES 64 /* including the reserved entry 0 */
#define MFT_NAME_SIZE 68   /* 67 characters and a NUL */

enum mft_type {
    MFT_DEV_BLOCK_BASIC = 1,
    MFT_DEV_NET_BASIC = 2,
    MFT_RESERVED_FIRST = 0x40000000,
};

struct mft_block_basic {
    uint64_t capacity;   /* bytes */
    uint16_t block_size; /* bytes */
};

struct mft_net_basic {
    uint8_t mac[6];
    uint16_t mtu; /* without the Ethernet header */
};

struct mft_entry {
    char name[MFT_NAME_SIZE];
    uint32_t type; /* enum mft_type */
    union {
        struct mft_block_basic block_basic;
        struct mft_net_basic net_basic;
    } u;
    union {
        int hostfd;    /* spt: the host file descriptor */
        void *data;
    } b;
    uint8_t attached;
};

struct mft {
    uint32_t version;
    uint32_t entries;
    struct mft_entry e[];
};

_Static_assert(sizeof(struct mft_entry) == 104, "mft_entry size");
_Static_assert(__builtin_offsetof(struct mft_entry, type) == 68, "type");
_Static_assert(__builtin_offsetof(struct mft_entry, u) == 72, "u");
_Static_assert(__builtin_offsetof(struct mft_entry, b) == 88, "b");
_Static_assert(__builtin_offsetof(struct mft_entry, attached) == 96,
               "attached");
_Static_assert(sizeof(struct mft) == 8, "mft header size");

#endif /* GUEST_MFT_H */
