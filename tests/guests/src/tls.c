/*
 * tls: switches between two TLS blocks with guest_set_tls_base and checks
 * that each keeps its own copy of an initialised (.tdata) and a zeroed
 * (.tbss) thread-local variable.
 */
#include "guest.h"

#define TLS_BLOCK_MAX 256

static __thread volatile int initialised = 7;
static __thread volatile int zeroed;

static uint8_t block_a[TLS_BLOCK_MAX] __attribute__((aligned(16)));
static uint8_t block_b[TLS_BLOCK_MAX] __attribute__((aligned(16)));

static bool expect(const char *where, int want_initialised, int want_zeroed)
{
    if (initialised == want_initialised && zeroed == want_zeroed)
        return true;
    guest_printf("FAILURE: %s: initialised=%d zeroed=%d, expected %d and %d\n",
                 where, initialised, zeroed, want_initialised, want_zeroed);
    return false;
}

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    if (guest_tls_size() > TLS_BLOCK_MAX)
        guest_abort("TLS block of %zu bytes exceeds %d", guest_tls_size(),
                    TLS_BLOCK_MAX);
    uintptr_t tp_a = guest_tls_init(block_a);
    uintptr_t tp_b = guest_tls_init(block_b);

    if (guest_set_tls_base(tp_a) != GUEST_OK) {
        guest_printf("FAILURE: set_tls_base failed\n");
        return GUEST_EXIT_FAILURE;
    }
    if (!expect("block A, fresh", 7, 0))
        return GUEST_EXIT_FAILURE;
    initialised = 1;
    zeroed = 2;

    guest_set_tls_base(tp_b);
    if (!expect("block B, fresh", 7, 0))
        return GUEST_EXIT_FAILURE;
    initialised = 3;
    zeroed = 4;

    guest_set_tls_base(tp_a);
    if (!expect("block A, again", 1, 2))
        return GUEST_EXIT_FAILURE;
    guest_set_tls_base(tp_b);
    if (!expect("block B, again", 3, 4))
        return GUEST_EXIT_FAILURE;

    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
