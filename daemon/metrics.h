/* metrics — counters, gauges and histograms in Prometheus text form.
 *
 * Series are registered by name and label set (from fixed vocabularies: command, dialect,
 * error class, stage, sink — never per vehicle, to bound cardinality) and return a handle with
 * a stable address. The thread that owns the measured thing updates its handle with relaxed
 * atomics; the HTTP thread renders all series. Registration and rendering share a mutex, so
 * series may also be registered after start. */
#ifndef VEM_METRICS_H
#define VEM_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_metrics vem_metrics_t;

typedef struct {
    atomic_uint_fast64_t value;
} vem_counter_t;

typedef struct {
    atomic_int_fast64_t value;
} vem_gauge_t;

#define VEM_HISTOGRAM_MAX_BUCKETS 16
typedef struct {
    size_t n_bounds;
    double bounds[VEM_HISTOGRAM_MAX_BUCKETS]; /* upper bounds, ascending; +Inf is implicit */
    atomic_uint_fast64_t buckets[VEM_HISTOGRAM_MAX_BUCKETS + 1];
    atomic_uint_fast64_t sum_ns; /* observations are durations, summed in nanoseconds */
} vem_histogram_t;

/* New, empty registry. */
vem_metrics_t *vem_metrics_new(void);

/* Frees the registry and every series; handles die with it; accepts NULL. */
void vem_metrics_destroy(vem_metrics_t **self_p);

/* Finds or registers the counter `name{labels}`; labels is NULL or alternating name, value
 * pairs ending in NULL. The registry owns the handle. */
vem_counter_t *vem_metrics_counter(vem_metrics_t *self, const char *name, const char *help,
                                   const char *const *labels);

/* Finds or registers a gauge, as vem_metrics_counter. */
vem_gauge_t *vem_metrics_gauge(vem_metrics_t *self, const char *name, const char *help,
                               const char *const *labels);

/* Finds or registers a latency histogram (seconds) with the given bucket bounds. */
vem_histogram_t *vem_metrics_histogram(vem_metrics_t *self, const char *name, const char *help,
                                       const char *const *labels, const double *bounds,
                                       size_t n_bounds);

/* Adds n to a counter. */
static inline void vem_counter_add(vem_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

/* Sets a gauge. */
static inline void vem_gauge_set(vem_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

/* Adds delta (may be negative) to a gauge. */
static inline void vem_gauge_add(vem_gauge_t *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

/* Records one duration of ns nanoseconds. */
void vem_histogram_observe_ns(vem_histogram_t *h, uint64_t ns);

/* Calls fn once per counter and gauge series with its full name (`name{labels}`) and value,
 * in registration order; histograms report their _count and _sum (seconds) series. */
void vem_metrics_each(vem_metrics_t *self, void (*fn)(void *arg, const char *series, double value),
                      void *arg);

/* Renders every series in the Prometheus text exposition format (version 0.0.4) into a
 * malloc'd, NUL-terminated buffer the caller frees. */
char *vem_metrics_render(vem_metrics_t *self, size_t *len_out);

#endif
