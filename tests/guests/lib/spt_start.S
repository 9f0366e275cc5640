/*
 * spt_start.S: entry point of the spt runtime.
 *
 * The tender jumps to _start with RDI = the boot information and
 * RSP = mem_size - 8. FS base and the other registers are whatever the
 * tender process left behind.
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
    call spt_main
1:  pause
    jmp 1b
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
