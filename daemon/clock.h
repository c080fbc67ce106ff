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

/* The pause before the next try after one more failure: the last pause doubled, at most hi and
 * at least lo (a last pause of 0, for none yet, gives lo). */
static inline int64_t vem_backoff_doubled(int64_t last_ms, int64_t lo, int64_t hi)
{
    int64_t ms = last_ms > hi / 2 ? hi : last_ms * 2;
    return ms < lo ? lo : ms;
}

#endif
