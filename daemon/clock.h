/* clock — the two clocks vemd reads: wall time for instants that are stored or compared with
 * frame times (receipt times), a monotonic clock for intervals (batch ages, retry delays). */
#ifndef VEM_CLOCK_H
#define VEM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall-clock time, microseconds since the Unix epoch. */
static inline int64_t vem_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic time in milliseconds, for intervals only. */
static inline int64_t vem_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
