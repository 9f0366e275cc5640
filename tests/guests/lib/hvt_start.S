/*
 * hvt_start.S: entry point and CPU exception stubs of the hvt runtime.
 *
 * The tender enters _start in 64-bit mode with interrupts disabled,
 * RDI = the boot information and RSP = mem_size - 8.
 */
    .section .interp, "a"
    .asciz "/nonexistent/solo5/"

    .text
    .globl _start
    .type _start, @function
_start:
    /* Seed the stack protector canary before any C code runs. */
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, __stack_chk_guard(%rip)

    andq $-16, %rsp
    call hvt_main
1:  pause
    jmp 1b
    .size _start, . - _start

/*
 * One stub per exception vector 0-31. Each leaves the stack as
 * [vector, error code, rip, cs, rflags, rsp, ss], pushing a zero error
 * code for the vectors where the CPU pushes none.
 */
    .macro TRAP_NOEC vector
trap_\vector:
    pushq $0
    pushq $\vector
    jmp trap_common
    .endm

    .macro TRAP_EC vector
trap_\vector:
    pushq $\vector
    jmp trap_common
    .endm

    TRAP_NOEC 0
    TRAP_NOEC 1
    TRAP_NOEC 2
    TRAP_NOEC 3
    TRAP_NOEC 4
    TRAP_NOEC 5
    TRAP_NOEC 6
    TRAP_NOEC 7
    TRAP_EC 8
    TRAP_NOEC 9
    TRAP_EC 10
    TRAP_EC 11
    TRAP_EC 12
    TRAP_EC 13
    TRAP_EC 14
    TRAP_NOEC 15
    TRAP_NOEC 16
    TRAP_EC 17
    TRAP_NOEC 18
    TRAP_NOEC 19
    TRAP_NOEC 20
    TRAP_EC 21
    TRAP_NOEC 22
    TRAP_NOEC 23
    TRAP_NOEC 24
    TRAP_NOEC 25
    TRAP_NOEC 26
    TRAP_NOEC 27
    TRAP_NOEC 28
    TRAP_EC 29
    TRAP_EC 30
    TRAP_NOEC 31

/* hvt_trap never returns: the guest halts with status 255. */
trap_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    call hvt_trap
2:  pause
    jmp 2b

    .section .rodata
    .balign 8
    .globl hvt_trap_stubs
hvt_trap_stubs:
    .quad trap_0, trap_1, trap_2, trap_3, trap_4, trap_5, trap_6, trap_7
    .quad trap_8, trap_9, trap_10, trap_11, trap_12, trap_13, trap_14
    .quad trap_15, trap_16, trap_17, trap_18, trap_19, trap_20, trap_21
    .quad trap_22, trap_23, trap_24, trap_25, trap_26, trap_27, trap_28
    .quad trap_29, trap_30, trap_31

    .section .note.GNU-stack, "", @progbits
