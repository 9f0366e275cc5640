/*
 * Layout of the launch image that the Go side of ntender writes to a
 * sealed memfd and the constructor in launcher.c reads after execve.
 *
 * Every field is a little-endian u64 so that the image has no padding and
 * the Go encoder (image.go) can write it with encoding/binary. The Go test
 * compares these offsets with the encoder's through cgo.
 */
#ifndef NTENDER_IMAGE_H
#define NTENDER_IMAGE_H

#include <stdint.h>

/* The environment variable that names the memfd holding the image. */
#define NTL_ENV_VAR "NTENDER_SPT_LAUNCH"

/* "ntspt\0" followed by the format version 1 as one byte and a NUL. */
#define NTL_MAGIC "ntspt\0\1"
#define NTL_MAGIC_SIZE 8

/* Guest addresses fixed by the Solo5 spt ABI. */
#define NTL_HOST_MEM_BASE 0x10000ULL  /* lowest mapped guest address */
#define NTL_BOOT_INFO_ADDR 0x11000ULL /* struct spt_boot_info, RDI at entry */
#define NTL_GUEST_MIN_BASE 0x100000ULL /* lowest address of a segment */
#define NTL_PAGE_SIZE 0x1000ULL

/* Flags in struct ntl_header.flags. */
#define NTL_FLAG_EXEC_HEAP 1ULL /* map the guest region RWX (--x-exec-heap) */

/* Segment protections, with the ELF PF_* values. */
#define NTL_PF_X 1ULL
#define NTL_PF_W 2ULL
#define NTL_PF_R 4ULL

struct ntl_header {
    char magic[NTL_MAGIC_SIZE];
    uint64_t image_size;  /* total size of the image in bytes */
    uint64_t mem_size;    /* guest memory: addresses [0, mem_size) */
    uint64_t entry;       /* e_entry */
    uint64_t flags;       /* NTL_FLAG_* */
    uint64_t boot_offset; /* bytes copied to NTL_BOOT_INFO_ADDR */
    uint64_t boot_size;
    uint64_t segments_offset; /* array of struct ntl_segment */
    uint64_t segments_count;
    uint64_t fds_offset; /* array of u64 fds to keep open, ascending */
    uint64_t fds_count;
    uint64_t filter_offset; /* array of struct sock_filter */
    uint64_t filter_count;
    /* Bit N-1 set: signal N is set to SIG_IGN in the guest process. */
    uint64_t ignored_signals;
};

struct ntl_segment {
    uint64_t vaddr;       /* p_vaddr: where the file bytes go */
    uint64_t filesz;      /* p_filesz */
    uint64_t start;       /* page-aligned start of the protected range */
    uint64_t end;         /* page-aligned end of the protected range */
    uint64_t prot;        /* NTL_PF_* */
    uint64_t data_offset; /* offset of the filesz bytes in the image */
};

#endif
