/* Core-internal: the monotonic clock in nanoseconds, the one reading of CLOCK_MONOTONIC
 * in the core (plugins get it as svc->clock_ns). Header-only. */
#ifndef SPCI_CLOCK_H
#define SPCI_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t spci_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
