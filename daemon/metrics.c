/* metrics — registry and Prometheus text rendering; see metrics.h.
 *
 * Families keep registration order; each holds its series in registration order. Rendering
 * writes one HELP and TYPE line per family, then its series. Label values are escaped as the
 * exposition format requires (backslash, double quote, newline). Everything is allocated at
 * registration; updates only touch atomics. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;

typedef struct s_series {
    struct s_series *next;
    char *labels; /* rendered `a="x",b="y"`, or "" */
    union {
        vem_counter_t counter;
        vem_gauge_t gauge;
        vem_histogram_t histogram;
    } u;
} s_series_t;

typedef struct s_family {
    struct s_family *next;
    char *name;
    char *help;
    s_type_t type;
    s_series_t *first, *last;
} s_family_t;

struct vem_metrics {
    pthread_mutex_t lock;
    s_family_t *first, *last;
};

/* A growing text buffer; allocation failure aborts (systemd restarts us). */
typedef struct {
    char *buf;
    size_t len, cap;
} s_text_t;

static void s_reserve(s_text_t *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return;
    while (t->len + more + 1 > t->cap)
        t->cap = t->cap ? t->cap * 2 : 4096;
    t->buf = realloc(t->buf, t->cap);
    if (!t->buf)
        abort();
}

__attribute__((format(printf, 2, 3))) static void s_printf(s_text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s_reserve(t, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void s_putc(s_text_t *t, char c)
{
    s_reserve(t, 1);
    t->buf[t->len++] = c;
    t->buf[t->len] = '\0';
}

static char *s_labels(const char *const *labels)
{
    s_text_t t = {0};
    s_reserve(&t, 0);
    t.buf[0] = '\0';
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        s_printf(&t, "%s%s=\"", i ? "," : "", labels[i]);
        for (const char *c = labels[i + 1]; *c; c++) {
            if (*c == '\\' || *c == '"')
                s_putc(&t, '\\');
            if (*c == '\n') {
                s_printf(&t, "\\n");
                continue;
            }
            s_putc(&t, *c);
        }
        s_putc(&t, '"');
    }
    return t.buf;
}

static char *s_strdup(const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        abort();
    return copy;
}

vem_metrics_t *vem_metrics_new(void)
{
    vem_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void vem_metrics_destroy(vem_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vem_metrics_t *self = *self_p;
    for (s_family_t *f = self->first, *fnext; f; f = fnext) {
        fnext = f->next;
        for (s_series_t *s = f->first, *snext; s; s = snext) {
            snext = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* Finds or creates the series; the caller holds the lock. NULL if the name exists with
 * another type (a programming error the caller asserts on). */
static s_series_t *s_find(vem_metrics_t *self, const char *name, const char *help, s_type_t type,
                          const char *const *labels, bool *created)
{
    s_family_t *f = self->first;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            abort();
        f->name = s_strdup(name);
        f->help = s_strdup(help);
        f->type = type;
        if (self->last)
            self->last->next = f;
        else
            self->first = f;
        self->last = f;
    }
    if (f->type != type)
        return NULL;
    char *rendered = s_labels(labels);
    for (s_series_t *s = f->first; s; s = s->next) {
        if (strcmp(s->labels, rendered) == 0) {
            free(rendered);
            *created = false;
            return s;
        }
    }
    s_series_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->labels = rendered;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    *created = true;
    return s;
}

vem_counter_t *vem_metrics_counter(vem_metrics_t *self, const char *name, const char *help,
                                   const char *const *labels)
{
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_find(self, name, help, S_COUNTER, labels, &created);
    pthread_mutex_unlock(&self->lock);
    return s ? &s->u.counter : NULL;
}

vem_gauge_t *vem_metrics_gauge(vem_metrics_t *self, const char *name, const char *help,
                               const char *const *labels)
{
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_find(self, name, help, S_GAUGE, labels, &created);
    pthread_mutex_unlock(&self->lock);
    return s ? &s->u.gauge : NULL;
}

vem_histogram_t *vem_metrics_histogram(vem_metrics_t *self, const char *name, const char *help,
                                       const char *const *labels, const double *bounds,
                                       size_t n_bounds)
{
    if (n_bounds > VEM_HISTOGRAM_MAX_BUCKETS)
        return NULL;
    bool created;
    pthread_mutex_lock(&self->lock);
    s_series_t *s = s_find(self, name, help, S_HISTOGRAM, labels, &created);
    if (s && created) {
        s->u.histogram.n_bounds = n_bounds;
        memcpy(s->u.histogram.bounds, bounds, n_bounds * sizeof *bounds);
    }
    pthread_mutex_unlock(&self->lock);
    return s ? &s->u.histogram : NULL;
}

void vem_histogram_observe_ns(vem_histogram_t *h, uint64_t ns)
{
    double seconds = (double)ns / 1e9;
    size_t i = 0;
    while (i < h->n_bounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static void s_render_histogram(s_text_t *t, const char *name, const s_series_t *s)
{
    const vem_histogram_t *h = &s->u.histogram;
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds)
            s_printf(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, s->labels, sep, h->bounds[i],
                     (unsigned long long)cumulative);
        else
            s_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, s->labels, sep,
                     (unsigned long long)cumulative);
    }
    double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
    const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
    s_printf(t, "%s_sum%s%s%s %.9g\n", name, open, s->labels, close, sum);
    s_printf(t, "%s_count%s%s%s %llu\n", name, open, s->labels, close,
             (unsigned long long)cumulative);
}

char *vem_metrics_render(vem_metrics_t *self, size_t *len_out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    s_text_t t = {0};
    s_reserve(&t, 0);
    t.buf[0] = '\0';
    pthread_mutex_lock(&self->lock);
    for (const s_family_t *f = self->first; f; f = f->next) {
        s_printf(&t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
        for (const s_series_t *s = f->first; s; s = s->next) {
            const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
            if (f->type == S_COUNTER)
                s_printf(&t, "%s%s%s%s %llu\n", f->name, open, s->labels, close,
                         (unsigned long long)atomic_load_explicit(&s->u.counter.value,
                                                                  memory_order_relaxed));
            else if (f->type == S_GAUGE)
                s_printf(&t, "%s%s%s%s %lld\n", f->name, open, s->labels, close,
                         (long long)atomic_load_explicit(&s->u.gauge.value, memory_order_relaxed));
            else
                s_render_histogram(&t, f->name, s);
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (len_out)
        *len_out = t.len;
    return t.buf;
}

void vem_metrics_each(vem_metrics_t *self, void (*fn)(void *arg, const char *series, double value),
                      void *arg)
{
    s_text_t name = {0};
    pthread_mutex_lock(&self->lock);
    for (const s_family_t *f = self->first; f; f = f->next) {
        for (const s_series_t *s = f->first; s; s = s->next) {
            const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
            const char *suffix[] = {"", "_count", "_sum"};
            for (int k = f->type == S_HISTOGRAM ? 1 : 0; k < (f->type == S_HISTOGRAM ? 3 : 1);
                 k++) {
                name.len = 0;
                s_printf(&name, "%s%s%s%s%s", f->name, suffix[k], open, s->labels, close);
                double value;
                if (f->type == S_COUNTER)
                    value = (double)atomic_load_explicit(&s->u.counter.value, memory_order_relaxed);
                else if (f->type == S_GAUGE)
                    value = (double)atomic_load_explicit(&s->u.gauge.value, memory_order_relaxed);
                else if (k == 2)
                    value =
                        (double)atomic_load_explicit(&s->u.histogram.sum_ns, memory_order_relaxed) /
                        1e9;
                else {
                    uint64_t n = 0;
                    for (size_t b = 0; b <= s->u.histogram.n_bounds; b++)
                        n += atomic_load_explicit(&s->u.histogram.buckets[b], memory_order_relaxed);
                    value = (double)n;
                }
                fn(arg, name.buf, value);
            }
        }
    }
    pthread_mutex_unlock(&self->lock);
    free(name.buf);
}
