/* log — prefixed, rate-limited lines; see log.h.
 *
 * Rate limiting keeps a small fixed table of call sites keyed by (component, format) pointers:
 * no allocation per line. A mutex guards the table and the write, so lines from different
 * threads never interleave. When the table is full the oldest-second slot is reused. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define S_SITES 64

typedef struct {
    const char *component, *fmt;
    int64_t second;
    unsigned lines;      /* written in this second */
    uint64_t suppressed; /* since the last line written */
} s_site_t;

static atomic_int s_level = VEM_LOG_INFO;
static atomic_uint s_burst = 10;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_site_t s_sites[S_SITES];
static FILE *s_stream;
static int64_t (*s_clock)(void);

static int64_t s_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

void vem_log_set_level(vem_log_level_t level)
{
    atomic_store(&s_level, (int)level);
}

vem_log_level_t vem_log_level(void)
{
    return (vem_log_level_t)atomic_load(&s_level);
}

int vem_log_parse_level(const char *name)
{
    static const struct {
        const char *name;
        vem_log_level_t level;
    } names[] = {{"err", VEM_LOG_ERR},       {"error", VEM_LOG_ERR}, {"warning", VEM_LOG_WARNING},
                 {"notice", VEM_LOG_NOTICE}, {"info", VEM_LOG_INFO}, {"debug", VEM_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            return (int)names[i].level;
    return -1;
}

void vem_log_set_burst(unsigned burst)
{
    atomic_store(&s_burst, burst ? burst : 1);
}

void vem_log_configure(vem_log_level_t level, unsigned burst)
{
    vem_log_set_level(level);
    vem_log_set_burst(burst);
}

void vem_log_set_stream(FILE *stream)
{
    pthread_mutex_lock(&s_lock);
    s_stream = stream;
    memset(s_sites, 0, sizeof s_sites);
    pthread_mutex_unlock(&s_lock);
}

void vem_log_set_clock(int64_t (*now_s)(void))
{
    pthread_mutex_lock(&s_lock);
    s_clock = now_s;
    pthread_mutex_unlock(&s_lock);
}

static s_site_t *s_site(const char *component, const char *fmt, int64_t now)
{
    s_site_t *victim = NULL; /* an empty slot, else the one idle longest */
    for (size_t i = 0; i < S_SITES; i++) {
        s_site_t *s = &s_sites[i];
        if (s->component == component && s->fmt == fmt)
            return s;
        if (!victim || (victim->fmt && (!s->fmt || s->second < victim->second)))
            victim = s;
    }
    memset(victim, 0, sizeof *victim);
    victim->component = component;
    victim->fmt = fmt;
    victim->second = now;
    return victim;
}

void vem_log(vem_log_level_t level, const char *component, const char *fmt, ...)
{
    if ((int)level > atomic_load(&s_level))
        return;
    pthread_mutex_lock(&s_lock);
    FILE *out = s_stream ? s_stream : stderr;
    int64_t now = s_clock ? s_clock() : s_monotonic();
    s_site_t *site = s_site(component, fmt, now);
    if (site->second != now) {
        site->second = now;
        site->lines = 0;
    }
    if (site->lines >= atomic_load(&s_burst)) {
        site->suppressed++;
        pthread_mutex_unlock(&s_lock);
        return;
    }
    site->lines++;
    fprintf(out, "<%d>%s: ", (int)level, component);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    if (site->suppressed) {
        fprintf(out, " (%llu similar messages suppressed)", (unsigned long long)site->suppressed);
        site->suppressed = 0;
    }
    fputc('\n', out);
    fflush(out);
    pthread_mutex_unlock(&s_lock);
}
