/* log — journald-friendly logging: "<PRIORITY>component: message" lines on stderr.
 *
 * Priorities are syslog's (3 error, 4 warning, 6 info, 7 debug); journald reads the prefix
 * when stderr goes to the journal. The threshold changes at run time (SIGHUP reload) and is
 * read with an atomic load, so any thread may log. Repeats are rate-limited: the same call
 * site (component and format) logs at most `burst` lines per second; what it suppressed is
 * counted and reported with the next line it lets through. */
#ifndef VEM_LOG_H
#define VEM_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    VEM_LOG_ERR = 3,
    VEM_LOG_WARNING = 4,
    VEM_LOG_NOTICE = 5,
    VEM_LOG_INFO = 6,
    VEM_LOG_DEBUG = 7,
} vem_log_level_t;

/* Logs one line at level from component (a short tag such as "ingest"). */
__attribute__((format(printf, 3, 4))) void vem_log(vem_log_level_t level, const char *component,
                                                   const char *fmt, ...);

/* Sets the threshold: lines above it (less urgent) are not written. */
void vem_log_set_level(vem_log_level_t level);

/* Current threshold. */
vem_log_level_t vem_log_level(void);

/* Parses "err", "warning", "notice", "info" or "debug"; -1 for anything else. */
int vem_log_parse_level(const char *name);

/* Lines per second a call site may write before repeats are suppressed (default 10). */
void vem_log_set_burst(unsigned burst);

/* Applies the configuration's log keys (log.level, log.burst) together, at start and on every
 * reload, so that no key is forgotten on one path. */
void vem_log_configure(vem_log_level_t level, unsigned burst);

/* For tests: where lines go (default stderr) and the clock in seconds (default monotonic). */
void vem_log_set_stream(FILE *stream);
void vem_log_set_clock(int64_t (*now_s)(void));

#endif
