/* completeness — the daily completeness of every vehicle's 1 Hz samples, from where they end up.
 *
 * obd.offline also fires when a day's received samples fall below completeness_min of the
 * engine-running seconds (rules.md). Re-sent (0x03) samples arrive hours or days late and in
 * any order, so the counts come from PostgreSQL, once the day is old enough for the re-sends
 * to have come (rules.completeness_delay_h after the day's end, Beijing time): per VIN, the
 * distinct sample times of the day and its engine-running seconds, the durations of its trips
 * (runs of samples no more than rules.trip_gap_min apart, from first to last: a parked truck's
 * terminal sends nothing and owes nothing). The workers then judge them (vem_rules_on_day) and
 * the verdicts go to the sinks like any other.
 *
 * The query runs on a thread of its own (a slow database must not hold main's loop); its
 * result comes back as a pointer written to a pipe, as the registry's does. */
#ifndef VEM_COMPLETENESS_H
#define VEM_COMPLETENESS_H

#include <stddef.h>
#include <stdint.h>

/* One vehicle's day. */
typedef struct {
    char vin[18];
    uint64_t received;  /* distinct sample times */
    uint64_t running_s; /* per trip, last sample time - first + 1, summed */
} vem_day_count_t;

/* One day's counts; main splits them by worker. */
typedef struct {
    int32_t day; /* Beijing days since 1970-01-01 */
    size_t n;
    vem_day_count_t *v;
} vem_day_counts_t;

/* The Beijing day of an instant (epoch microseconds). */
int32_t vem_completeness_day(int64_t us);

/* The latest Beijing day whose end lies delay_h hours or more before now_us. */
int32_t vem_completeness_due(int64_t now_us, int delay_h);

/* Starts a detached thread that loads day's counts, trips split by gaps longer than gap_s,
 * and writes the vem_day_counts_t pointer (NULL after an error, logged) to fd. -1 when the
 * thread cannot start. */
int vem_completeness_start(const char *conninfo, int32_t day, int64_t gap_s, int fd);

/* Frees counts; accepts NULL. */
void vem_day_counts_free(vem_day_counts_t *counts);

#endif
