/*
 * fpu: SSE arithmetic with packed (movaps, mulps) and scalar double
 * precision instructions. This is the only guest built with SSE enabled.
 */
#include "guest.h"

static float a[4] __attribute__((aligned(16))) = { 1.5f, 2.0f, 2.5f, 3.0f };
static float b[4] __attribute__((aligned(16)));

/* Square root by Newton's method, to keep the FPU busy without libm. */
static double square_root(double x)
{
    double r = x;

    for (int i = 0; i < 50; i++)
        r = 0.5 * (r + x / r);
    return r;
}

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    __asm__ __volatile__("movaps %1, %%xmm0\n\t"
                         "mulps %1, %%xmm0\n\t"
                         "movaps %%xmm0, %0"
                         : "=m"(b)
                         : "m"(a)
                         : "xmm0");
    for (int i = 0; i < 4; i++) {
        if (b[i] != a[i] * a[i]) {
            guest_printf("FAILURE: mulps result %d is wrong\n", i);
            return GUEST_EXIT_FAILURE;
        }
    }

    volatile double x = 2.0;
    double r = square_root(x);
    if (r * r < 1.999999 || r * r > 2.000001) {
        guest_printf("FAILURE: square root of 2 is wrong\n");
        return GUEST_EXIT_FAILURE;
    }
    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
