/*
 * hvt.c: the hvt target, whose services are hypercalls (hvt_abi.h).
 * The guest installs its own GDT and IDT. The tender's GDT lies in a page
 * that the guest page tables leave unmapped, and the tender sets no IDT, so
 * without them any CPU exception would triple-fault the vCPU.
 */
#include "hvt_abi.h"
#include "platform.h"

#define MSR_FS_BASE 0xc0000100
#define GDT_CODE 0x08
#define GDT_DATA 0x10
#define IDT_VECTORS 32

struct idt_gate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "idt_gate size");

struct descriptor_table_register {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

/*
 * Null, 64-bit code (0x08) and data (0x10) descriptors. The accessed bits
 * are preset so the CPU never needs to write to the table.
 */
static uint64_t gdt[3] __attribute__((aligned(16))) = {
    0,
    0x00af9b000000ffffULL,
    0x00cf93000000ffffULL,
};
RUNTIME_DATA static struct idt_gate idt[IDT_VECTORS]
    __attribute__((aligned(16)));
extern const uint64_t hvt_trap_stubs[IDT_VECTORS];

/* The frame handed to the tender as the HALT cookie; see hvt_trap(). */
RUNTIME_DATA static struct hvt_trap_frame trap_frame;

RUNTIME_DATA static uint64_t tsc_mult; /* ns = (tsc * tsc_mult) >> 32 */

static void cpu_init(void)
{
    struct descriptor_table_register gdtr = {
        .limit = sizeof(gdt) - 1,
        .base = (uint64_t)gdt,
    };
    __asm__ __volatile__("lgdt %0\n\t"
                         "pushq %1\n\t"
                         "leaq 1f(%%rip), %%rax\n\t"
                         "pushq %%rax\n\t"
                         "lretq\n"
                         "1:\n\t"
                         "movl %2, %%eax\n\t"
                         "movl %%eax, %%ds\n\t"
                         "movl %%eax, %%es\n\t"
                         "movl %%eax, %%ss\n\t"
                         "movl %%eax, %%fs\n\t"
                         "movl %%eax, %%gs\n\t"
                         :
                         : "m"(gdtr), "i"(GDT_CODE), "i"(GDT_DATA)
                         : "rax", "memory");

    for (int i = 0; i < IDT_VECTORS; i++) {
        uint64_t handler = hvt_trap_stubs[i];
        idt[i] = (struct idt_gate){
            .offset_low = (uint16_t)handler,
            .selector = GDT_CODE,
            .ist = 0,
            .type_attr = 0x8e,
            .offset_mid = (uint16_t)(handler >> 16),
            .offset_high = (uint32_t)(handler >> 32),
        };
    }
    struct descriptor_table_register idtr = {
        .limit = sizeof(idt) - 1,
        .base = (uint64_t)idt,
    };
    __asm__ __volatile__("lidt %0" : : "m"(idtr) : "memory");

    /* TLS accesses before guest_set_tls_base() must fault. */
    platform_set_tls_base(0);
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static const char *trap_name(uint64_t vector)
{
    static const char *const names[] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
        "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
        "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    };

    if (vector < GUEST_ARRAY_SIZE(names))
        return names[vector];
    return "#reserved";
}

/*
 * Report a CPU exception and halt with status 255. The frame is copied
 * out of the stack so that the cookie, and the 512 bytes the tender may
 * read from it, lie well inside guest memory.
 */
__attribute__((noreturn)) void hvt_trap(const uint64_t *stack)
{
    uint64_t vector = stack[0];
    uint64_t cr2;

    __asm__ __volatile__("movq %%cr2, %0" : "=r"(cr2));
    trap_frame = (struct hvt_trap_frame){
        .cr2 = cr2,
        .ec = stack[1],
        .rip = stack[2],
        .cs = stack[3],
        .rflags = stack[4],
        .rsp = stack[5],
        .ss = stack[6],
    };
    runtime_raw_printf("Solo5: trap: type=%s ec=0x%lx rip=0x%lx rsp=0x%lx "
                       "rflags=0x%lx",
                       trap_name(vector), trap_frame.ec, trap_frame.rip,
                       trap_frame.rsp, trap_frame.rflags);
    if (vector == 14)
        runtime_raw_printf(" cr2=0x%lx", cr2);
    runtime_raw_printf("\nSolo5: ABORT: fatal trap\n");
    platform_exit(GUEST_EXIT_ABORT, &trap_frame);
}

__attribute__((noreturn)) void hvt_main(const struct hvt_boot_info *bi)
{
    cpu_init();

    uint64_t freq = bi->cpu_cycle_freq;
    if (freq == 0)
        guest_abort("hvt boot info has a zero cpu_cycle_freq");
    /* 1e9 << 32 fits in 64 bits, so this is exact to within 1/freq. */
    tsc_mult = (1000000000ULL << 32) / freq;

    struct runtime_boot boot = {
        .target = "hvt",
        .cmdline = (const char *)(uintptr_t)bi->cmdline,
        .mem_size = bi->mem_size,
        .mft = (struct mft *)(uintptr_t)bi->mft,
    };
    runtime_start(&boot);
}

void platform_console_write(const char *buf, size_t size)
{
    volatile struct hvt_hc_puts arg = {
        .data = (uint64_t)(uintptr_t)buf,
        .len = size,
    };

    hvt_hypercall(HVT_HYPERCALL_PUTS, &arg);
}

void platform_exit(int status, void *cookie)
{
    volatile struct hvt_hc_halt arg = {
        .cookie = (uint64_t)(uintptr_t)cookie,
        .exit_status = status,
    };

    hvt_hypercall(HVT_HYPERCALL_HALT, &arg);
    for (;;)
        __asm__ __volatile__("pause");
}

guest_time_t platform_clock_monotonic(void)
{
    return (guest_time_t)(((unsigned __int128)rdtsc() * tsc_mult) >> 32);
}

guest_time_t platform_clock_wall(void)
{
    volatile struct hvt_hc_walltime arg = { 0 };

    hvt_hypercall(HVT_HYPERCALL_WALLTIME, &arg);
    return arg.nsecs;
}

void platform_yield(guest_time_t deadline, guest_handle_set_t *ready_set)
{
    guest_time_t now = platform_clock_monotonic();
    volatile struct hvt_hc_poll arg = {
        .timeout_nsecs = deadline > now ? deadline - now : 0,
    };

    hvt_hypercall(HVT_HYPERCALL_POLL, &arg);
    *ready_set = arg.ready_set;
}

guest_result_t platform_set_tls_base(uintptr_t base)
{
    __asm__ __volatile__("wrmsr"
                         :
                         : "c"(MSR_FS_BASE), "a"((uint32_t)base),
                           "d"((uint32_t)(base >> 32)));
    return GUEST_OK;
}

guest_result_t platform_block_io(bool write, guest_handle_t handle,
                                 struct mft_entry *e, uint64_t offset,
                                 void *buf, size_t size)
{
    (void)e;
    volatile struct hvt_hc_block arg = {
        .handle = handle,
        .offset = offset,
        .data = (uint64_t)(uintptr_t)buf,
        .len = size,
    };

    hvt_hypercall(write ? HVT_HYPERCALL_BLOCK_WRITE : HVT_HYPERCALL_BLOCK_READ,
                  &arg);
    return (guest_result_t)arg.ret;
}

guest_result_t platform_net_write(guest_handle_t handle, struct mft_entry *e,
                                  const void *buf, size_t size)
{
    (void)e;
    volatile struct hvt_hc_net arg = {
        .handle = handle,
        .data = (uint64_t)(uintptr_t)buf,
        .len = size,
    };

    hvt_hypercall(HVT_HYPERCALL_NET_WRITE, &arg);
    return (guest_result_t)arg.ret;
}

guest_result_t platform_net_read(guest_handle_t handle, struct mft_entry *e,
                                 void *buf, size_t size, size_t *read_size)
{
    (void)e;
    volatile struct hvt_hc_net arg = {
        .handle = handle,
        .data = (uint64_t)(uintptr_t)buf,
        .len = size,
    };

    hvt_hypercall(HVT_HYPERCALL_NET_READ, &arg);
    *read_size = arg.len;
    return (guest_result_t)arg.ret;
}
