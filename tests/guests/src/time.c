/*
 * time: checks that the monotonic clock advances and that the wall clock
 * is past 2017-01-01. It also checks that yield returns at once for a past
 * deadline, and that for a future one it sleeps for 0.8 to 1.2 times the
 * requested time. It runs for about one second.
 *
 * Returning early is always a failure. Returning late is mostly host
 * scheduling noise on a loaded machine, so one of the sleeps may overrun.
 */
#include "guest.h"

#define NSEC_PER_MSEC 1000000ULL
#define SLEEP (300 * NSEC_PER_MSEC)
#define SLEEPS 3
#define MAX_OVERRUNS 1
/* 2017-01-01T00:00:00Z in seconds since the epoch. */
#define WALL_MIN_SECONDS 1483228800ULL

int guest_main(const struct guest_start_info *info)
{
    (void)info;
    guest_time_t t0 = guest_clock_monotonic();
    guest_time_t t1 = t0;

    for (int i = 0; i < 1000000 && t1 == t0; i++)
        t1 = guest_clock_monotonic();
    if (t1 <= t0) {
        guest_printf("FAILURE: monotonic clock does not advance\n");
        return GUEST_EXIT_FAILURE;
    }

    guest_time_t before = guest_clock_monotonic();
    guest_yield(before, NULL);
    guest_time_t after = guest_clock_monotonic();
    if (after - before > SLEEP) {
        guest_printf("FAILURE: yield to a past deadline took %lu ns\n",
                     after - before);
        return GUEST_EXIT_FAILURE;
    }

    int overruns = 0;
    for (int i = 0; i < SLEEPS; i++) {
        guest_time_t start = guest_clock_monotonic();
        guest_yield(start + SLEEP, NULL);
        guest_time_t slept = guest_clock_monotonic() - start;
        guest_printf("slept %lu ns for %llu ns\n", slept, SLEEP);
        if (slept < SLEEP * 8 / 10) {
            guest_printf("FAILURE: slept too little\n");
            return GUEST_EXIT_FAILURE;
        }
        if (slept > SLEEP * 12 / 10 && ++overruns > MAX_OVERRUNS) {
            guest_printf("FAILURE: slept too much\n");
            return GUEST_EXIT_FAILURE;
        }
    }

    guest_time_t wall = guest_clock_wall();
    guest_printf("wall clock is %lu s\n", wall / 1000000000UL);
    if (wall / 1000000000UL < WALL_MIN_SECONDS) {
        guest_printf("FAILURE: wall clock is before 2017\n");
        return GUEST_EXIT_FAILURE;
    }

    guest_printf("SUCCESS\n");
    return GUEST_EXIT_SUCCESS;
}
