/* vemd — main: configuration, start order, signals, systemd notification, drain.
 *
 *   vemd [--config FILE] [--foreground]     run (FILE defaults to /etc/vemd/vemd.cfg)
 *   vemd --check-config FILE                 load FILE, report the first error, exit 0/1
 *   vemd --print-config [FILE]               print the effective configuration, annotated
 *   vemd --version
 *
 * Start order: configuration, spool (recovers a torn tail), metrics registry and HTTP
 * endpoint, the sinks (PostgreSQL, Kafka), workers (they bind their queues), ingest (binds the
 * network endpoints, then replays from the lowest sink cursor what was not yet stored), control.
 * Only when every actor reported ready does systemd get READY=1.
 *
 * The main thread then waits on a signalfd and a 1 s tick:
 *   SIGHUP           reload: re-read the file, apply the reloadable keys, log ignored ones,
 *                    load the vehicle registry again and hand it to the workers
 *   SIGTERM/SIGINT   drain: STOPPING=1, stop ingest (flushes the spool and hands over what it
 *                    holds), then workers (they empty their queues), then the sink (writes
 *                    what it holds), within drain_timeout_s
 *   tick             WATCHDOG=1 only if every actor's loop counter moved since the last tick:
 *                    a thread stuck in a call stops the pings and systemd restarts us.
 * Owns: the configuration, the ZeroMQ context, the actors, the spool until ingest takes it. */
#include "actor.h"

#include "clock.h"
#include "config.h"
#include "control.h"
#include "http.h"
#include "curve.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "pgload.h"
#include "keys.h"
#include "regcache.h"
#include "registry.h"
#include "checkpoint.h"
#include "completeness.h"
#include "rsdhist.h"
#include "rules.h"
#include "session.h"
#include "sink_kafka.h"
#include "sink_pg.h"
#include "spool.h"
#include "watchdog.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define VEM_VERSION        "0.1.0"
#define S_DEFAULT_CONFIG   "/etc/vemd/vemd.cfg"
#define S_REGISTRY_WAIT_MS 5000
/* A registry or terminal-key load that failed (PostgreSQL down at start) is tried again after
 * this long: without the keys every signed frame checks as no_key (quarantined under enforce,
 * marked so in Kafka under flag), and a replay made meanwhile would say so too. */
#define S_REGISTRY_RETRY_MS     10000  /* the first wait after a failed load ... */
#define S_REGISTRY_RETRY_MAX_MS 300000 /* ... doubling up to this */

typedef struct {
    vem_config_t *cfg;
    const char *cfg_path;
    void *zctx;
    vem_metrics_t *metrics;
    vem_http_t *http;
    vem_spool_t *spool;
    unsigned nworkers;
    vem_worker_args_t *worker_args;
    vem_actor_t **workers;
    vem_sink_pg_args_t pg_args;
    vem_actor_t *pg;
    vem_sink_kafka_args_t kafka_args;
    vem_actor_t *kafka;
    vem_ingest_args_t ingest_args;
    vem_actor_t *ingest;
    vem_curve_t *curve; /* CURVE endpoints' keys (NULL: all plain); zap answers handshakes */
    vem_actor_t *zap;
    vem_control_args_t control_args;
    vem_actor_t *control;
    vem_watchdog_t *watchdog;         /* progress between ticks */
    atomic_uint_fast64_t *forwarded;  /* per worker, inputs ingest handed to it */
    const char *sinks[VEM_MAX_SINKS]; /* endpoints the workers send their records to */
    int day_fd[2];                    /* completeness loader -> main */
    bool day_loading;
    int64_t day_retry_ms; /* monotonic time to load again after a failure; 0: none due */
    int64_t day_wait_ms;  /* the wait after the next failure; 0: the first */
    int32_t day_judged;   /* the last Beijing day whose completeness went to the workers */
    unsigned nsinks;
    int registry_fd[2];       /* the loader thread writes the snapshot's pointer */
    vem_registry_t *registry; /* the latest snapshot (one reference), or NULL */
    bool registry_loading;
    int64_t registry_retry_ms; /* monotonic time to load again after a failure; 0: none due */
    int64_t registry_wait_ms;  /* the wait after the next failure; 0: the first */
    vem_keys_t *keys;          /* the terminal key registry ingest and the workers share (keys.h) */
    _Atomic int signatures;    /* vem_worker_signatures_t; terminals.signatures, reloadable */
    vem_gauge_t *keys_size;
    int hist_fd[2]; /* roadside history loader -> main */
    bool hist_loading;
    vem_counter_t *hist_readings, *hist_truncated;
    vem_counter_t *reloads, *reload_errors;
    vem_gauge_t *registry_size;
    vem_gauge_t *registry_cached; /* 1 while the registry or the keys are the cache's */
    bool registry_cached_in_use;  /* the registry in use came from the cache */
    bool keys_cached;             /* the cache seeded the keys (theirs until a load) */
} s_daemon_t;

/* The registry (and the terminal keys with it) is loaded off the main thread, which must keep
 * feeding the watchdog (pgload.h); main polls the pipe for the snapshot's pointer (NULL on
 * failure, already logged). */
typedef struct {
    vem_keys_t *keys; /* loaded too, before the registry's pointer is written */
    vem_gauge_t *keys_size;
    char cache_dir[4096]; /* where a load that read both keeps them (regcache.h) */
} s_loader_t;

static void *s_registry_load(const char *conninfo, void *arg)
{
    s_loader_t *job = arg;
    char err[512];
    if (vem_keys_load(job->keys, conninfo, err, sizeof err) != 0) {
        vem_log(VEM_LOG_ERR, "main", "%s; terminal keys stay as they were", err);
    } else {
        vem_gauge_set(job->keys_size, (int64_t)vem_keys_size(job->keys));
        vem_log(VEM_LOG_INFO, "main", "terminal keys: %zu activated VINs",
                vem_keys_size(job->keys));
    }
    vem_registry_t *reg = vem_registry_load(conninfo, err, sizeof err);
    if (!reg)
        vem_log(VEM_LOG_ERR, "main", "%s; vehicles stay as they were", err);
    else if (vem_keys_loaded(job->keys) &&
             vem_regcache_save(job->cache_dir, reg, job->keys, vem_now_us() / 1000000, err,
                               sizeof err) != 0)
        vem_log(VEM_LOG_WARNING, "main", "%s; a start while PostgreSQL is down will lack them",
                err);
    return reg;
}

static void s_registry_drop(void *reg)
{
    vem_registry_release(reg);
}

/* Starts loading the vehicle registry (unless a load is under way). */
static void s_load_registry(s_daemon_t *d)
{
    if (!d->cfg->pg.enable || d->registry_loading)
        return;
    s_loader_t *job = malloc(sizeof *job);
    if (!job)
        abort();
    job->keys = d->keys;
    job->keys_size = d->keys_size;
    snprintf(job->cache_dir, sizeof job->cache_dir, "%s", d->cfg->spool.dir);
    if (vem_pgload_start(d->cfg->pg.conninfo, s_registry_load, job, s_registry_drop,
                         d->registry_fd[1]) != 0)
        vem_log(VEM_LOG_ERR, "main", "cannot start the registry loader");
    else
        d->registry_loading = true;
}

static void s_hand_registry(s_daemon_t *d, vem_registry_t *reg);

/* vem_registry_cached: 1 while the registry in use, or the keys, are still the cache's (a load
 * can bring the vehicles and fail on terminal_keys: the keys then stay the cache's). */
static void s_cached_gauge(s_daemon_t *d)
{
    bool keys = d->keys_cached && !vem_keys_loaded(d->keys);
    vem_gauge_set(d->registry_cached, d->registry_cached_in_use || keys);
}

/* After a failed load: the monotonic time of the next attempt into *retry_ms, waiting longer
 * after each failure in a row (from S_REGISTRY_RETRY_MS up to S_REGISTRY_RETRY_MAX_MS, kept in
 * *wait_ms); returns the wait. */
static int64_t s_retry_later(int64_t *retry_ms, int64_t *wait_ms)
{
    int64_t wait = *wait_ms ? *wait_ms : S_REGISTRY_RETRY_MS;
    *retry_ms = vem_mono_ms() + wait;
    *wait_ms = wait * 2 < S_REGISTRY_RETRY_MAX_MS ? wait * 2 : S_REGISTRY_RETRY_MAX_MS;
    return wait;
}

/* Gives each worker a reference to the snapshot the loader produced. */
static void s_send_registry(s_daemon_t *d)
{
    vem_registry_t *reg = NULL;
    if (read(d->registry_fd[0], &reg, sizeof reg) != (ssize_t)sizeof reg)
        return;
    d->registry_loading = false;
    if (!reg || !vem_keys_loaded(d->keys)) {
        /* a server that is down comes back; a grant that is missing does not: wait longer
         * each time, so the registry is not read and sent to every worker every 10 s forever */
        int64_t wait = s_retry_later(&d->registry_retry_ms, &d->registry_wait_ms);
        vem_log(VEM_LOG_WARNING, "main", "%s not loaded: loading again in %lld s",
                reg ? "terminal keys" : "vehicle registry or terminal keys",
                (long long)(wait / 1000));
    } else {
        d->registry_wait_ms = 0;
    }
    if (reg)
        d->registry_cached_in_use = false;
    s_cached_gauge(d);
    if (!reg)
        return;
    vem_log(VEM_LOG_INFO, "main", "vehicle registry: %zu vehicles", vem_registry_size(reg));
    s_hand_registry(d, reg);
}

/* Gives each worker (and ingest) a reference to reg, whose one reference becomes main's. */
static void s_hand_registry(s_daemon_t *d, vem_registry_t *reg)
{
    vem_gauge_set(d->registry_size, (int64_t)vem_registry_size(reg));
    vem_registry_retain(reg, d->nworkers + (d->ingest ? 1 : 0));
    if (d->ingest) { /* the stations route readings by plate */
        uint8_t msg[sizeof VEM_INGEST_REGISTRY_MSG + sizeof reg];
        memcpy(msg, VEM_INGEST_REGISTRY_MSG, sizeof VEM_INGEST_REGISTRY_MSG);
        memcpy(msg + sizeof VEM_INGEST_REGISTRY_MSG, &reg, sizeof reg);
        if (zmq_send(vem_actor_pipe(d->ingest), msg, sizeof msg, 0) != (int)sizeof msg)
            vem_registry_release(reg);
    }
    for (unsigned i = 0; i < d->nworkers; i++) {
        uint8_t msg[sizeof VEM_WORKER_REGISTRY_MSG + sizeof reg];
        memcpy(msg, VEM_WORKER_REGISTRY_MSG, sizeof VEM_WORKER_REGISTRY_MSG);
        memcpy(msg + sizeof VEM_WORKER_REGISTRY_MSG, &reg, sizeof reg);
        if (zmq_send(vem_actor_pipe(d->workers[i]), msg, sizeof msg, 0) != (int)sizeof msg)
            vem_registry_release(reg);
    }
    vem_registry_release(d->registry);
    d->registry = reg; /* ours: for ingest when it starts after this */
}

/* At start, when PostgreSQL did not give them within S_REGISTRY_WAIT_MS (down or slow): the
 * registry and terminal keys the last load kept (regcache.h), so that neither a replay nor the
 * first trips go without. The keys only while none were loaded (vem_keys_seed), the registry
 * only when registry is true (none came from PostgreSQL): the cache is never put over what
 * PostgreSQL gave, which an operator may have changed while vemd was down (a chip replaced).
 * True when the cache was read. */
static bool s_registry_from_cache(s_daemon_t *d, bool registry)
{
    vem_regcache_t cache;
    char err[600];
    int rc = vem_regcache_load(d->cfg->spool.dir, &cache, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            vem_log(VEM_LOG_WARNING, "main", "%s: not used", err);
        return false;
    }
    size_t keys = vem_keys_seed(d->keys, cache.keys, cache.nkeys);
    vem_gauge_set(d->keys_size, (int64_t)vem_keys_size(d->keys));
    vem_registry_t *reg = registry ? cache.registry : NULL;
    if (reg)
        cache.registry = NULL;
    char when[40] = "?";
    time_t at = (time_t)cache.saved_at;
    struct tm tm;
    if (gmtime_r(&at, &tm)) /* (NULL past its years: strftime would crash every start) */
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    vem_log(VEM_LOG_NOTICE, "main",
            "vehicle registry (%zu vehicles%s) and terminal keys (%zu of %zu) from the cache of "
            "%s, until PostgreSQL's are loaded",
            vem_registry_size(cache.registry ? cache.registry : reg),
            reg ? "" : ", not used: PostgreSQL's came", keys, cache.nkeys, when);
    vem_regcache_free(&cache);
    d->keys_cached = keys > 0;
    d->registry_cached_in_use = reg != NULL;
    s_cached_gauge(d);
    if (reg)
        s_hand_registry(d, reg);
    return true;
}

/* Starts loading the next day whose completeness is due: at start the last two (a restart
 * may have missed one; the verdicts' ids make a second judgement harmless), then each day. */
static void s_completeness_tick(s_daemon_t *d)
{
    const vem_config_t *c = d->cfg;
    if (!c->rules.enable || !c->pg.enable || d->day_loading ||
        (d->day_retry_ms && vem_mono_ms() < d->day_retry_ms))
        return;
    int32_t due = vem_completeness_due(vem_now_us(), (int)c->rules.completeness_delay_h);
    if (d->day_judged >= due)
        return;
    int32_t day = d->day_judged ? d->day_judged + 1 : due - 1;
    int64_t gap_s = (int64_t)c->rules.t.trip_gap_min * 60;
    if (vem_completeness_start(c->pg.conninfo, day, gap_s, d->day_fd[1]) == 0)
        d->day_loading = true;
    else
        vem_log(VEM_LOG_ERR, "main", "cannot start the completeness loader");
}

/* Hands each worker the day's counts of its vehicles. */
static void s_send_day(s_daemon_t *d)
{
    vem_day_counts_t *all = NULL;
    if (read(d->day_fd[0], &all, sizeof all) != (ssize_t)sizeof all)
        return;
    d->day_loading = false;
    if (!all) {
        /* logged by the loader; a server that is down is not asked again at once, or a
         * PostgreSQL outage would start a loader thread a few hundred times a second */
        int64_t wait = s_retry_later(&d->day_retry_ms, &d->day_wait_ms);
        vem_log(VEM_LOG_WARNING, "main", "daily completeness not loaded: loading again in %lld s",
                (long long)(wait / 1000));
        return;
    }
    d->day_retry_ms = d->day_wait_ms = 0;
    vem_day_counts_t **mine = calloc(d->nworkers, sizeof *mine);
    if (!mine)
        abort();
    for (unsigned i = 0; i < d->nworkers; i++) {
        mine[i] = calloc(1, sizeof **mine);
        if (!mine[i] || !(mine[i]->v = calloc(all->n ? all->n : 1, sizeof *all->v)))
            abort();
        mine[i]->day = all->day;
    }
    for (size_t k = 0; k < all->n; k++) {
        vem_day_counts_t *to = mine[vem_vin_hash(all->v[k].vin) % d->nworkers];
        to->v[to->n++] = all->v[k];
    }
    for (unsigned i = 0; i < d->nworkers; i++) {
        uint8_t msg[sizeof VEM_WORKER_DAY_MSG + sizeof mine[i]];
        memcpy(msg, VEM_WORKER_DAY_MSG, sizeof VEM_WORKER_DAY_MSG);
        memcpy(msg + sizeof VEM_WORKER_DAY_MSG, &mine[i], sizeof mine[i]);
        if (zmq_send(vem_actor_pipe(d->workers[i]), msg, sizeof msg, 0) != (int)sizeof msg)
            vem_day_counts_free(mine[i]);
    }
    vem_log(VEM_LOG_INFO, "main", "daily completeness of day %d: %zu vehicles judged",
            (int)all->day, all->n);
    d->day_judged = all->day;
    free(mine);
    vem_day_counts_free(all);
}

/* Starts loading the roadside history the rsd.* chains look back on (rsdhist.h). */
static void s_load_history(s_daemon_t *d)
{
    const vem_config_t *c = d->cfg;
    if (!c->rules.enable || !c->pg.enable || c->rules.rsd_history_readings == 0)
        return;
    if (vem_rsdhist_start(c->pg.conninfo, c->rules.t.rsd_cycle_months,
                          (size_t)c->rules.rsd_history_readings, d->hist_fd[1]) == 0)
        d->hist_loading = true;
    else
        vem_log(VEM_LOG_ERR, "main", "cannot start the roadside history loader");
}

/* The worker whose vehicle a stored reading is: ingest routes it by the registry's VIN for the
 * plate and colour, else by the VIN stored with it (a VIN's 17 characters), else by the plate;
 * the worker seeds it there (s_history). */
static unsigned s_history_worker(const s_daemon_t *d, const char *plate, const char *color,
                                 const char *vin)
{
    const vem_vehicle_t *reg =
        d->registry ? vem_registry_find_plate(d->registry, plate, color) : NULL;
    uint64_t h = reg                          ? vem_vin_hash(reg->vin)
                 : strlen(vin) == VEM_VIN_LEN ? vem_vin_hash(vin)
                                              : vem_plate_hash(plate);
    return (unsigned)(h % d->nworkers);
}

/* Hands each worker the roadside history of its vehicles (a plate's readings stay together,
 * in their order, those of one route too). */
static void s_send_history(s_daemon_t *d)
{
    vem_rsdhist_t *all = NULL;
    if (read(d->hist_fd[0], &all, sizeof all) != (ssize_t)sizeof all)
        return;
    d->hist_loading = false;
    if (!all)
        return; /* logged by the loader; the chains start from the checkpoints alone */
    vem_rsdhist_t **mine = calloc(d->nworkers, sizeof *mine);
    unsigned *to = malloc((all->n ? all->n : 1) * sizeof *to);
    size_t *count = calloc(d->nworkers, sizeof *count);
    if (!mine || !to || !count)
        abort();
    for (size_t k = 0; k < all->n; k++) { /* a plate and colour's readings are together */
        bool same = k > 0 && strcmp(all->r[k].plate, all->r[k - 1].plate) == 0 &&
                    strcmp(all->r[k].plate_color, all->r[k - 1].plate_color) == 0 &&
                    strcmp(all->vin[k], all->vin[k - 1]) == 0;
        to[k] = same ? to[k - 1]
                     : s_history_worker(d, all->r[k].plate, all->r[k].plate_color, all->vin[k]);
        count[to[k]]++;
    }
    for (unsigned i = 0; i < d->nworkers; i++)
        mine[i] = vem_rsdhist_new(count[i]);
    for (size_t k = 0; k < all->n; k++) {
        vem_rsdhist_t *m = mine[to[k]];
        memcpy(m->vin[m->n], all->vin[k], sizeof m->vin[m->n]);
        m->r[m->n++] = all->r[k];
    }
    free(to);
    free(count);
    for (unsigned i = 0; i < d->nworkers; i++) {
        uint8_t msg[sizeof VEM_WORKER_HISTORY_MSG + sizeof mine[i]];
        memcpy(msg, VEM_WORKER_HISTORY_MSG, sizeof VEM_WORKER_HISTORY_MSG);
        memcpy(msg + sizeof VEM_WORKER_HISTORY_MSG, &mine[i], sizeof mine[i]);
        if (zmq_send(vem_actor_pipe(d->workers[i]), msg, sizeof msg, 0) != (int)sizeof msg)
            vem_rsdhist_free(mine[i]);
    }
    vem_counter_add(d->hist_readings, all->n);
    if (all->truncated) {
        vem_counter_add(d->hist_truncated, 1);
        vem_log(VEM_LOG_WARNING, "main",
                "roadside history: more than rules.rsd_history_readings = %lld readings; plates "
                "past the bound start with empty rsd.* chains",
                (long long)d->cfg->rules.rsd_history_readings);
    }
    vem_log(VEM_LOG_INFO, "main", "roadside history: %zu readings loaded", all->n);
    free(mine);
    vem_rsdhist_free(all);
}

/* Takes what a loader thread still has to give, so nothing is left in a pipe at exit (a
 * loader stuck in a query is left to the exit). */
static void s_drain_loaders(s_daemon_t *d)
{
    struct pollfd pfd[3] = {{.fd = d->registry_fd[0], .events = POLLIN},
                            {.fd = d->day_fd[0], .events = POLLIN},
                            {.fd = d->hist_fd[0], .events = POLLIN}};
    for (int i = 0; i < 20 && (d->registry_loading || d->day_loading || d->hist_loading); i++) {
        if (poll(pfd, 3, 100) <= 0)
            continue;
        if (pfd[2].revents & POLLIN) {
            vem_rsdhist_t *h = NULL;
            if (read(d->hist_fd[0], &h, sizeof h) == (ssize_t)sizeof h)
                vem_rsdhist_free(h);
            d->hist_loading = false;
        }
        if (pfd[0].revents & POLLIN) {
            vem_registry_t *reg = NULL;
            if (read(d->registry_fd[0], &reg, sizeof reg) == (ssize_t)sizeof reg)
                vem_registry_release(reg);
            d->registry_loading = false;
        }
        if (pfd[1].revents & POLLIN) {
            vem_day_counts_t *counts = NULL;
            if (read(d->day_fd[0], &counts, sizeof counts) == (ssize_t)sizeof counts)
                vem_day_counts_free(counts);
            d->day_loading = false;
        }
    }
}

/* The worker a restored vehicle belongs to: by VIN, or by plate for a vehicle known only by
 * its plate, as ingest routes their inputs. */
static unsigned s_ckpt_worker(const vem_ckpt_entry_t *e, unsigned workers)
{
    return (unsigned)((e->plate[0] ? vem_plate_hash(e->plate) : vem_vin_hash(e->vin)) % workers);
}

/* Healthy while the endpoints are read, the spool takes writes, has room and can be read back
 * for the workers, and every sink is connected: what a load balancer needs to know before it sends
 * terminals here. Reads only atomics (the HTTP server runs on its own thread). */
static bool s_health(void *arg, char *why, size_t whylen)
{
    s_daemon_t *d = arg;
    const vem_ingest_args_t *in = &d->ingest_args;
    if (!d->ingest || !atomic_load(&in->listening))
        snprintf(why, whylen, "endpoints not listening");
    else if (!atomic_load(&in->spool_ok))
        snprintf(why, whylen, "spool not writable: intake paused");
    else if (atomic_load(&in->spool_full))
        snprintf(why, whylen, "spool full: intake paused");
    else if (!atomic_load(&in->spool_readable))
        snprintf(why, whylen, "spool not readable: the workers wait (see the log)");
    else if (d->pg && !atomic_load(&d->pg_args.up))
        snprintf(why, whylen, "PostgreSQL sink not connected: the spool is growing");
    else if (d->kafka && !atomic_load(&d->kafka_args.up))
        snprintf(why, whylen, "Kafka sink: no broker up: the spool is growing");
    else
        return true;
    return false;
}

/* Lowers *lowest to the named consumer's spool cursor: restart replays from the lowest one. */
static int s_cursor_min(const char *dir, const char *name, uint64_t *lowest)
{
    char err[512];
    vem_spool_cursor_t *cursor = vem_spool_cursor_open(dir, name, err, sizeof err);
    if (!cursor) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return -1;
    }
    uint64_t seq = vem_spool_cursor_get(cursor);
    vem_spool_cursor_destroy(&cursor);
    if (seq < *lowest)
        *lowest = seq;
    return 0;
}

/* The Kafka sink's settings from the configuration (also for --check-config). */
static void s_kafka_args(const vem_config_t *c, vem_sink_kafka_args_t *k)
{
    k->brokers = c->kafka.brokers;
    k->topics[VEM_KTOPIC_VIOLATIONS] = c->kafka.topic_violations;
    k->topics[VEM_KTOPIC_SAMPLES] = c->kafka.topic_samples;
    k->topics[VEM_KTOPIC_TERMINAL] = c->kafka.topic_terminal;
    k->topics[VEM_KTOPIC_RSD] = c->kafka.topic_rsd;
    k->compression = c->kafka.compression;
    k->linger_ms = c->kafka.linger_ms;
    k->batch_bytes = c->kafka.batch_bytes;
    k->batch_messages = c->kafka.batch_messages;
    k->queue_messages = c->kafka.queue_messages;
    k->queue_kbytes = c->kafka.queue_kbytes;
    k->message_timeout_ms = c->kafka.message_timeout_ms;
    k->properties = c->kafka.properties;
    k->queue_hwm = (int)c->kafka.queue_hwm;
    k->retry_max_s = c->kafka.retry_max_s;
    k->spool_dir = c->spool.dir;
    k->spill_max_bytes = 2 * (uint64_t)c->spool.max_bytes; /* as the PostgreSQL sink's */
}

/* librdkafka's verdict on the kafka settings, for --check-config: 0, or -1 with its reason. */
static int s_kafka_check(const vem_config_t *c, char *err, size_t errlen)
{
    if (!c->kafka.enable)
        return 0;
    vem_sink_kafka_args_t k = {0};
    s_kafka_args(c, &k);
    rd_kafka_conf_t *conf = vem_sink_kafka_conf(&k, err, errlen);
    if (!conf)
        return -1;
    rd_kafka_conf_destroy(conf);
    return 0;
}

static int s_start_curve(s_daemon_t *d);

static int s_start(s_daemon_t *d)
{
    const vem_config_t *c = d->cfg;
    char err[512];
    vem_spool_opts_t opts = {.max_bytes = c->spool.max_bytes,
                             .segment_bytes = c->spool.segment_bytes,
                             .fsync = c->spool.fsync};
    d->spool = vem_spool_open(c->spool.dir, &opts, err, sizeof err);
    if (!d->spool) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return -1;
    }
    d->metrics = vem_metrics_new();
    d->reloads =
        vem_metrics_counter(d->metrics, "vem_reloads_total", "SIGHUP reloads applied.", NULL);
    d->reload_errors = vem_metrics_counter(d->metrics, "vem_reload_errors_total",
                                           "SIGHUP reloads refused (bad file).", NULL);
    d->registry_size =
        vem_metrics_gauge(d->metrics, "vem_registry_vehicles",
                          "Vehicles in the registry snapshot the workers use.", NULL);
    d->registry_cached = vem_metrics_gauge(
        d->metrics, "vem_registry_cached",
        "1 while the vehicle registry or the terminal keys in use are the registry cache's "
        "(not yet loaded from PostgreSQL since the start).",
        NULL);
    d->keys_size = vem_metrics_gauge(d->metrics, "vem_terminal_keys",
                                     "Activated VINs (terminal_keys) as last loaded.", NULL);
    d->keys = vem_keys_new();
    atomic_store(&d->signatures, vem_worker_signatures(c->terminals.signatures));
    d->hist_readings = vem_metrics_counter(d->metrics, "vem_rsd_history_readings_total",
                                           VEM_RSDHIST_READINGS_HELP, NULL);
    d->hist_truncated = vem_metrics_counter(
        d->metrics, "vem_rsd_history_truncated_total",
        "Roadside history loads cut at rules.rsd_history_readings (plates left out).", NULL);
    if (c->metrics.enable) {
        d->http = vem_http_new(c->metrics.address, (uint16_t)c->metrics.port, d->metrics, s_health,
                               d, err, sizeof err);
        if (!d->http) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            return -1;
        }
    }
    d->zctx = zmq_ctx_new();
    zmq_ctx_set(d->zctx, ZMQ_MAX_SOCKETS, (int)c->terminals.max_connections + 1024);

    /* Sinks first: workers connect to them, and they stop last. */
    uint64_t replay_from = UINT64_MAX; /* the lowest cursor of the consumers that have one */
    if (c->pg.enable) {
        vem_sink_pg_args_t *pg = &d->pg_args;
        pg->zctx = d->zctx;
        pg->metrics = d->metrics;
        pg->conninfo = c->pg.conninfo;
        pg->spool_dir = c->spool.dir;
        pg->batch_rows = c->pg.batch_rows;
        pg->batch_ms = c->pg.batch_ms;
        pg->queue_hwm = (int)c->pg.queue_hwm;
        pg->partitions_ahead = (int)c->pg.partitions_ahead_days;
        pg->retry_max_s = c->pg.retry_max_s;
        pg->connections = (int)c->pg.connections;
        pg->spool_first = vem_spool_first_seq(d->spool);
        /* A record is its input's bytes and some 60 bytes more: twice the spool always holds
         * what the spool holds unsettled, so the spool fills first and only a wedged sink
         * (not an outage) makes the workers wait. */
        pg->spill_max_bytes = 2 * (uint64_t)c->spool.max_bytes;
        if (s_cursor_min(c->spool.dir, "pg", &replay_from) != 0)
            return -1;
        d->sinks[d->nsinks++] = VEM_SINK_PG_ENDPOINT;
        d->pg = vem_actor_new(d->zctx, "sink-pg", vem_sink_pg_actor, pg, err, sizeof err);
        if (!d->pg) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            return -1;
        }
    }

    if (c->kafka.enable) {
        vem_sink_kafka_args_t *k = &d->kafka_args;
        s_kafka_args(c, k);
        k->zctx = d->zctx;
        k->metrics = d->metrics;
        k->spool_first = vem_spool_first_seq(d->spool);
        if (s_cursor_min(c->spool.dir, "kafka", &replay_from) != 0)
            return -1;
        d->sinks[d->nsinks++] = VEM_SINK_KAFKA_ENDPOINT;
        d->kafka = vem_actor_new(d->zctx, "sink-kafka", vem_sink_kafka_actor, k, err, sizeof err);
        if (!d->kafka) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            return -1;
        }
    }

    /* The rule states come back from the workers' checkpoints; the spool is replayed from the
     * oldest input one of them lacks. */
    vem_ckpt_set_t ckpt = {0};
    if (c->rules.enable) {
        if (vem_ckpt_load(c->spool.dir, &ckpt, err, sizeof err) != 0) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            return -1;
        }
        if (ckpt.low_through < replay_from)
            replay_from = ckpt.low_through;
        vem_log(VEM_LOG_INFO, "main",
                "rule state: %zu vehicles from %u checkpoints (%u refused), judged through "
                "input %llu",
                ckpt.count, ckpt.files, ckpt.damaged, (unsigned long long)ckpt.low_through);
    }
    if (replay_from == UINT64_MAX)
        replay_from = 0;
    else
        replay_from++;

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d->nworkers =
        c->pipeline.workers ? (unsigned)c->pipeline.workers : (unsigned)(cores > 0 ? cores : 1);
    d->worker_args = calloc(d->nworkers, sizeof *d->worker_args);
    d->workers = calloc(d->nworkers, sizeof *d->workers);
    d->watchdog = vem_watchdog_new(d->nworkers, VEM_MAX_SINKS);
    d->forwarded = calloc(d->nworkers, sizeof *d->forwarded);
    if (!d->worker_args || !d->workers || !d->forwarded)
        abort();
    /* no silence rules until ingest says whether it starts with a replay */
    atomic_store(&d->ingest_args.behind, true);
    /* each restored vehicle goes to the worker ingest routes its VIN (or plate) to */
    const vem_ckpt_entry_t **mine = calloc(ckpt.count ? ckpt.count : 1, sizeof *mine);
    size_t *nmine = calloc(d->nworkers, sizeof *nmine), *at = calloc(d->nworkers, sizeof *at);
    if (!mine || !nmine || !at)
        abort();
    for (size_t k = 0; k < ckpt.count; k++)
        nmine[s_ckpt_worker(&ckpt.entries[k], d->nworkers)]++;
    for (unsigned i = 1; i < d->nworkers; i++)
        at[i] = at[i - 1] + nmine[i - 1];
    for (size_t k = 0; k < ckpt.count; k++)
        mine[at[s_ckpt_worker(&ckpt.entries[k], d->nworkers)]++] = &ckpt.entries[k];
    for (unsigned i = 0; i < d->nworkers; i++) {
        vem_worker_args_t *w = &d->worker_args[i];
        w->zctx = d->zctx;
        w->index = i;
        w->metrics = d->metrics;
        w->dedup_window = (size_t)c->pipeline.dedup_window;
        w->sample_past_s = c->pipeline.sample_past_days * 86400;
        w->sample_future_s = c->pipeline.sample_future_s;
        w->max_sessions = (size_t)c->pipeline.max_sessions;
        w->session_idle_s = c->pipeline.session_idle_s;
        w->rcvhwm = (int)c->pipeline.queue_hwm;
        w->rules = c->rules.enable ? &c->rules.t : NULL;
        w->keys = d->keys;
        w->signatures = &d->signatures;
        w->sinks = d->sinks;
        w->nsinks = d->nsinks;
        w->sink_hwm = (int)c->pg.queue_hwm;
        w->max_plates = (size_t)c->stations.max_plates / d->nworkers + 1;
        if (c->rules.enable && c->pg.enable && c->rules.rsd_history_readings > 0)
            w->rsd_conninfo = c->pg.conninfo;
        if (c->rules.enable) {
            w->ckpt_dir = c->spool.dir;
            w->workers = d->nworkers;
            w->ckpt_interval_s = (unsigned)c->rules.checkpoint_interval_s;
            w->ckpt = mine + (at[i] - nmine[i]);
            w->nckpt = nmine[i];
            /* the worker's own file says how far it judged; after a change of the worker
             * count, the lowest of all (inputs past a vehicle's own mark still count once) */
            w->rules_floor = ckpt.workers == d->nworkers && i < ckpt.nthrough && !ckpt.damaged
                                 ? ckpt.through[i]
                                 : ckpt.low_through;
            /* the receipt the verdicts a worker makes before its first input carry, to be
             * ordered after what the inputs up to the floor emitted and before what the replay
             * of those after it emits (schema/0016_merge_by_input.sql) */
            if (vem_spool_received_us(c->spool.dir, w->rules_floor, &w->rules_floor_rx_us) < 0)
                w->rules_floor_rx_us = vem_now_us();
            w->output_seq = &d->ingest_args.output_seq;
            w->behind = &d->ingest_args.behind;
            w->paused_us = &d->ingest_args.paused_us;
            w->closed_at_us = &d->ingest_args.closed_at_us;
            w->staged_from_us = &d->ingest_args.staged_from_us;
            w->ckpt_wanted = &d->ingest_args.ckpt_wanted;
        }
        char name[32]; /* thread names keep 15 characters */
        snprintf(name, sizeof name, "worker-%u", i);
        d->workers[i] = vem_actor_new(d->zctx, name, vem_worker_actor, w, err, sizeof err);
        if (!d->workers[i]) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            break;
        }
    }
    /* the workers restored their vehicles before reporting ready, and wrote this run's files */
    bool started = d->workers[d->nworkers - 1] != NULL;
    if (started && c->rules.enable && ckpt.files && ckpt.workers != d->nworkers)
        vem_ckpt_remove_above(c->spool.dir, d->nworkers);
    free(mine);
    free(nmine);
    free(at);
    vem_ckpt_set_free(&ckpt);
    if (!started)
        return -1;

    /* Intake starts once the registry is in the workers (or after a few seconds without it, as
     * when PostgreSQL is down): a trip keeps the engine figures it started with, so a truck
     * seen before the registry would be judged by obd.nox_high instead of its NOx window for
     * the whole trip. */
    s_load_registry(d);
    s_load_history(d);
    int64_t wait_until = vem_mono_ms() + S_REGISTRY_WAIT_MS;
    if (d->registry_loading) {
        struct pollfd pfd = {.fd = d->registry_fd[0], .events = POLLIN};
        if (poll(&pfd, 1, S_REGISTRY_WAIT_MS) == 1)
            s_send_registry(d);
    }
    /* PostgreSQL's first: the cache only for what it did not give in time (a loader still
     * running then replaces the cache's when it ends) */
    bool from_pg = d->registry != NULL;
    bool cached = c->pg.enable && (!from_pg || !vem_keys_loaded(d->keys)) &&
                  s_registry_from_cache(d, !from_pg);
    if (c->pg.enable && !from_pg)
        vem_log(VEM_LOG_WARNING, "main",
                "vehicle registry not loaded after %d ms: intake starts with %s; trips begun "
                "before it arrives are judged %s",
                S_REGISTRY_WAIT_MS, cached ? "the registry cache's" : "none",
                cached ? "with the cached engine figures" : "without engine figures");
    /* The roadside history too, in what is left of the same wait (it is routed by the
     * registry); if it comes later, the workers judge again the chains it changes. */
    if (d->hist_loading) {
        struct pollfd pfd = {.fd = d->hist_fd[0], .events = POLLIN};
        int64_t left = wait_until - vem_mono_ms();
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) == 1)
            s_send_history(d);
        else
            vem_log(VEM_LOG_WARNING, "main",
                    "roadside history not loaded after %d ms: intake starts without it; the "
                    "chains it changes are judged again when it comes",
                    S_REGISTRY_WAIT_MS);
    }

    if (s_start_curve(d) != 0)
        return -1;
    vem_ingest_args_t *in = &d->ingest_args;
    in->zctx = d->zctx;
    in->metrics = d->metrics;
    in->spool = d->spool;
    in->spool_dir = c->spool.dir;
    /* The sinks settle the spool; without any, the workers do. */
    in->consumers = (c->pg.enable ? 1u << VEM_CONSUMER_PG : 0) |
                    (c->kafka.enable ? 1u << VEM_CONSUMER_KAFKA : 0);
    if (!in->consumers)
        in->consumers = 1u << VEM_CONSUMER_WORKERS;
    if (c->rules.enable)
        in->consumers |= 1u << VEM_CONSUMER_RULES;
    in->forwarded = d->forwarded;
    if (d->registry) { /* the snapshot loaded before intake: ingest routes readings by it */
        vem_registry_retain(d->registry, 1);
        in->registry = d->registry;
    }
    in->ckpt_bytes = 2 * (uint64_t)c->spool.segment_bytes;
    in->replay_from = replay_from;
    in->workers = d->nworkers;
    in->terminals_endpoint = c->terminals.endpoint;
    in->gateways_endpoint = c->gateways.endpoint;
    in->gateways_curve = vem_curve_endpoint(d->curve, "gateways");
    in->stations = (vem_stations_opts_t){.endpoint = c->stations.endpoint,
                                         .max_message = (size_t)c->stations.max_message_bytes,
                                         .max_inflight = (unsigned)c->stations.max_inflight,
                                         .max_stations = (unsigned)c->stations.max_stations,
                                         .future_s = c->stations.future_tolerance_s,
                                         .dedup = (size_t)c->stations.dedup_readings,
                                         .max_depth = (unsigned)c->stations.max_json_depth,
                                         .curve = vem_curve_endpoint(d->curve, "stations")};
    in->max_connections = (unsigned)c->terminals.max_connections;
    in->max_frame = (size_t)c->terminals.max_frame_bytes;
    in->idle_timeout_s = (int)c->terminals.idle_timeout_s;
    in->backlog = (int)c->terminals.backlog;
    in->rcvhwm = (int)c->terminals.rcvhwm;
    in->worker_hwm = (int)c->pipeline.queue_hwm;
    in->tcp_keepalive_idle_s = (int)c->terminals.keepalive_idle_s;
    in->keys = d->keys;
    in->bind_vin = c->terminals.bind_vin;
    in->activations_per_s = (unsigned)c->terminals.activations_per_s;
    in->activations_per_address_s = (unsigned)c->terminals.activations_per_address_s;
    in->send_timeout_ms = (int)c->terminals.send_timeout_s * 1000;
    in->reject_bytes = (uint64_t)c->terminals.reject_bytes;
    in->reject_records = (unsigned)c->terminals.reject_records;
    in->reject_share_pct = (unsigned)c->terminals.reject_share_pct;
    in->max_per_address = (unsigned)c->terminals.max_per_address;
    in->new_per_address_s = (unsigned)c->terminals.new_per_address_s;
    in->gateway_max_message = c->gateways.max_message_bytes;
    atomic_store(&in->reply_mode, strcmp(c->terminals.reply_mode, "hj1239") == 0 ? VEM_REPLY_HJ1239
                                                                                 : VEM_REPLY_NONE);
    d->ingest = vem_actor_new(d->zctx, "ingest", vem_ingest_actor, in, err, sizeof err);
    vem_registry_release(in->registry); /* not taken when ingest failed before its stations */
    in->registry = NULL;
    if (!d->ingest) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return -1;
    }

    vem_control_args_t *ctl = &d->control_args;
    ctl->zctx = d->zctx;
    ctl->endpoint = c->control.endpoint;
    ctl->max_message = c->control.max_message_bytes;
    ctl->metrics = d->metrics;
    ctl->version = VEM_VERSION;
    ctl->started_us = vem_now_us();
    ctl->workers = d->nworkers;
    d->control = vem_actor_new(d->zctx, "control", vem_control_actor, ctl, err, sizeof err);
    if (!d->control) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return -1;
    }
    return 0;
}

/* The CURVE endpoints' keys and the ZAP handler, up before ingest binds: libzmq lets every
 * client in when no handler answers. */
static int s_start_curve(s_daemon_t *d)
{
    const vem_config_t *c = d->cfg;
    const char *ends[][3] = {
        {"gateways", c->gateways.curve_server_key, c->gateways.curve_clients_dir},
        {"stations", c->stations.curve_server_key, c->stations.curve_clients_dir}};
    char err[600];
    for (size_t i = 0; i < 2; i++) {
        if (!*ends[i][1])
            continue;
        if (!d->curve)
            d->curve = vem_curve_new(d->zctx, d->metrics);
        if (vem_curve_add(d->curve, ends[i][0], ends[i][1], ends[i][2], err, sizeof err) != 0) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
            return -1;
        }
    }
    if (!d->curve)
        return 0;
    d->zap = vem_actor_new(d->zctx, "zap", vem_curve_zap_actor, d->curve, err, sizeof err);
    if (!d->zap) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return -1;
    }
    return 0;
}

/* --check-config: CURVE key files that would not load are errors; a plain endpoint that other
 * machines can reach is a warning (anyone who reaches it can deliver). */
static int s_check_curve(const vem_config_t *c, const char *path)
{
    const char *ends[][4] = {{"gateways", c->gateways.endpoint, c->gateways.curve_server_key,
                              c->gateways.curve_clients_dir},
                             {"stations", c->stations.endpoint, c->stations.curve_server_key,
                              c->stations.curve_clients_dir}};
    for (size_t i = 0; i < 2; i++) {
        if (!*ends[i][1])
            continue;
        if (!*ends[i][2]) {
            if (!vem_curve_is_local(ends[i][1]))
                fprintf(stderr,
                        "%s: warning: %s.endpoint %s is plain (no %s.curve_server_key) and "
                        "reachable from other machines: anyone who reaches it can deliver\n",
                        path, ends[i][0], ends[i][1], ends[i][0]);
            continue;
        }
        char pub[VEM_CURVE_KEY_TEXT], sec[VEM_CURVE_KEY_TEXT], err[600];
        if (vem_curve_read_server_key(ends[i][2], pub, sec, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s.curve_server_key: %s\n", path, ends[i][0], err);
            return -1;
        }
        struct stat st;
        if (stat(ends[i][3], &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "%s: %s.curve_clients_dir %s is not a directory\n", path, ends[i][0],
                    ends[i][3]);
            return -1;
        }
    }
    return 0;
}

/* The workers' last checkpoints go in place only if the sinks, now stopped, stored every record
 * they cover (their cursors say, and for verdicts of the clock, which bear the seq of an input
 * before them, that they stored everything); otherwise the previous ones stay, and the next
 * start judges the difference again. */
static void s_last_checkpoints(s_daemon_t *d)
{
    const vem_config_t *c = d->cfg;
    uint64_t stored = UINT64_MAX;
    if (c->pg.enable && s_cursor_min(c->spool.dir, "pg", &stored) != 0)
        stored = 0;
    if (c->kafka.enable && s_cursor_min(c->spool.dir, "kafka", &stored) != 0)
        stored = 0;
    bool drained = (!c->pg.enable || atomic_load(&d->pg_args.drained)) &&
                   (!c->kafka.enable || atomic_load(&d->kafka_args.drained));
    for (unsigned i = 0; d->worker_args && i < d->nworkers; i++) {
        vem_worker_args_t *w = &d->worker_args[i];
        vem_ckpt_writer_t *cw = w->pending_ckpt;
        w->pending_ckpt = NULL;
        if (!cw)
            continue;
        char err[600];
        if (stored < w->pending_through) {
            vem_log(VEM_LOG_NOTICE, "main",
                    "rule state of worker %u not checkpointed at stop: the sinks hold inputs "
                    "up to %llu of %llu; the next start judges the rest again",
                    i, (unsigned long long)stored, (unsigned long long)w->pending_through);
            vem_ckpt_abort(&cw);
        } else if (w->pending_swept && !drained) {
            vem_log(VEM_LOG_NOTICE, "main",
                    "rule state of worker %u not checkpointed at stop: verdicts of the clock it "
                    "emitted may not all be stored; the next start judges again from the last "
                    "checkpoint",
                    i);
            vem_ckpt_abort(&cw);
        } else if (vem_ckpt_commit(&cw, err, sizeof err) != 0) {
            vem_log(VEM_LOG_ERR, "main", "%s", err);
        }
    }
}

/* Stops intake first, then the workers, so everything read is handed over and processed. */
static void s_stop(s_daemon_t *d)
{
    vem_actor_destroy(&d->control);
    vem_actor_destroy(&d->ingest);
    vem_actor_destroy(&d->zap); /* after the CURVE sockets closed: see curve.h */
    for (unsigned i = 0; d->workers && i < d->nworkers; i++)
        vem_actor_destroy(&d->workers[i]);
    vem_actor_destroy(&d->pg);
    vem_actor_destroy(&d->kafka);
    s_last_checkpoints(d);
    vem_http_destroy(&d->http);
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    vem_spool_destroy(&d->spool);
    vem_curve_destroy(&d->curve);
    vem_metrics_destroy(&d->metrics);
    vem_registry_release(d->registry);
    d->registry = NULL;
    if (!d->registry_loading) /* else a loader stuck in a query still uses it: left to the exit */
        vem_keys_destroy(&d->keys);
    free(d->workers);
    free(d->worker_args);
    vem_watchdog_destroy(&d->watchdog);
    free(d->forwarded);
}

/* True when the pipeline made progress since the previous tick (watchdog.h). */
static bool s_progress(s_daemon_t *d)
{
    uint64_t done[d->nworkers], forwarded[d->nworkers], sinks[VEM_MAX_SINKS];
    for (unsigned i = 0; i < d->nworkers; i++) {
        done[i] = atomic_load(&d->worker_args[i].done);
        forwarded[i] = atomic_load(&d->forwarded[i]);
    }
    size_t nsinks = 0;
    if (d->pg)
        sinks[nsinks++] = atomic_load(&d->pg_args.beats);
    if (d->kafka)
        sinks[nsinks++] = atomic_load(&d->kafka_args.beats);
    vem_watchdog_tick_t tick = {.ingest_beats = atomic_load(&d->ingest_args.beats),
                                .sink_beats = sinks,
                                .nsinks = nsinks,
                                .done = done,
                                .forwarded = forwarded,
                                .nworkers = d->nworkers};
    return vem_watchdog_progress(d->watchdog, &tick);
}

/* Hands every worker its own copy of the (reloaded) rules configuration. */
static void s_send_rules(s_daemon_t *d)
{
    if (!d->cfg->rules.enable)
        return;
    for (unsigned i = 0; i < d->nworkers; i++) {
        vem_rules_config_t *copy = malloc(sizeof *copy);
        if (!copy)
            abort();
        *copy = d->cfg->rules.t;
        uint8_t msg[sizeof VEM_WORKER_RULES_MSG + sizeof copy];
        memcpy(msg, VEM_WORKER_RULES_MSG, sizeof VEM_WORKER_RULES_MSG);
        memcpy(msg + sizeof VEM_WORKER_RULES_MSG, &copy, sizeof copy);
        if (zmq_send(vem_actor_pipe(d->workers[i]), msg, sizeof msg, 0) != (int)sizeof msg)
            free(copy);
    }
}

static void s_reload(s_daemon_t *d)
{
    /* first, and whatever the file says: revoking a key must not wait for a valid file */
    vem_curve_reload(d->curve);
    char err[512];
    vem_config_t *fresh = vem_config_load(d->cfg_path, err, sizeof err);
    if (!fresh) {
        vem_counter_add(d->reload_errors, 1);
        vem_log(VEM_LOG_ERR, "main", "reload refused, keeping the running configuration: %s", err);
        return;
    }
    if (vem_config_reload(d->cfg, fresh, err, sizeof err) != 0)
        vem_log(VEM_LOG_WARNING, "main", "reload: %s", err);
    else if (err[0])
        vem_log(VEM_LOG_WARNING, "main", "reload: %s", err);
    vem_config_destroy(&fresh);
    vem_log_configure(d->cfg->log.level, (unsigned)d->cfg->log.burst);
    s_send_rules(d);
    s_load_registry(d);
    atomic_store(&d->ingest_args.reply_mode, strcmp(d->cfg->terminals.reply_mode, "hj1239") == 0
                                                 ? VEM_REPLY_HJ1239
                                                 : VEM_REPLY_NONE);
    atomic_store(&d->signatures, vem_worker_signatures(d->cfg->terminals.signatures));
    vem_counter_add(d->reloads, 1);
    vem_log(VEM_LOG_INFO, "main", "configuration reloaded from %s", d->cfg_path);
}

/* The drain's deadline, from a signal handler: only atomics and write(2). */
static s_daemon_t *s_draining;
static atomic_bool s_drain_late;

static void s_on_alarm(int sig)
{
    (void)sig;
    if (!atomic_exchange(&s_drain_late, true)) {
        atomic_store(&s_draining->pg_args.stop_now, true);
        atomic_store(&s_draining->kafka_args.stop_now, true);
        alarm(5);
        return;
    }
    static const char line[] = "<4>main: drain timeout: a sink is stuck in a call; exiting, the "
                               "spool keeps what it did not write\n";
    ssize_t rc = write(STDERR_FILENO, line, sizeof line - 1);
    (void)rc;
    _exit(0);
}

static int s_run(s_daemon_t *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    /* A write past RLIMIT_FSIZE must fail with EFBIG, which the spool handles like a full
     * disk, rather than end the process. */
    signal(SIGXFSZ, SIG_IGN);
    /* Blocked before any thread starts, so every thread inherits the mask and only the
     * signalfd sees these signals. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0 || pipe2(d->registry_fd, O_CLOEXEC) != 0 || pipe2(d->day_fd, O_CLOEXEC) != 0 ||
        pipe2(d->hist_fd, O_CLOEXEC) != 0) {
        vem_log(VEM_LOG_ERR, "main", "signalfd: %s", strerror(errno));
        return 1;
    }
    if (s_start(d) != 0) {
        s_stop(d);
        close(sfd);
        return 1;
    }
    sd_notifyf(0, "READY=1\nSTATUS=serving %s with %u workers", d->cfg->terminals.endpoint,
               d->nworkers);
    vem_log(VEM_LOG_INFO, "main", "vemd %s ready: terminals %s, %u workers, spool %s", VEM_VERSION,
            d->cfg->terminals.endpoint, d->nworkers, d->cfg->spool.dir);

    uint64_t watchdog_us = 0;
    bool watchdog = sd_watchdog_enabled(0, &watchdog_us) > 0;
    for (;;) {
        zmq_pollitem_t items[] = {{NULL, sfd, ZMQ_POLLIN, 0},
                                  {NULL, d->registry_fd[0], ZMQ_POLLIN, 0},
                                  {NULL, d->day_fd[0], ZMQ_POLLIN, 0},
                                  {NULL, d->hist_fd[0], ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 4, 1000);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN))
            s_send_registry(d);
        if (rc > 0 && (items[2].revents & ZMQ_POLLIN))
            s_send_day(d);
        if (rc > 0 && (items[3].revents & ZMQ_POLLIN))
            s_send_history(d);
        s_completeness_tick(d);
        if (d->registry_retry_ms && vem_mono_ms() >= d->registry_retry_ms) {
            d->registry_retry_ms = 0;
            s_load_registry(d);
        }
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                s_reload(d);
                continue;
            }
            if (si.ssi_signo == SIGPIPE)
                continue;
            vem_log(VEM_LOG_INFO, "main", "signal %u: draining", si.ssi_signo);
            break;
        }
        if (s_progress(d) && watchdog)
            sd_notify(0, "WATCHDOG=1");
    }
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    s_drain_loaders(d);
    /* A drain that hangs must not hang forever: when the time is up the sink stops trying
     * (what it could not write stays in the spool for the next start); if it is stuck in a
     * call, a second alarm ends the process with a line saying so. */
    s_draining = d;
    struct sigaction sa = {.sa_handler = s_on_alarm};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)d->cfg->pipeline.drain_timeout_s);
    s_stop(d);
    alarm(0);
    close(sfd);
    if (atomic_load(&s_drain_late))
        vem_log(VEM_LOG_WARNING, "main",
                "drain timeout of %lld s reached: exiting; what was not written stays in the "
                "spool and is replayed at the next start",
                (long long)d->cfg->pipeline.drain_timeout_s);
    vem_log(VEM_LOG_INFO, "main", "drained, exiting");
    return 0;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: vemd [--config FILE]\n"
                 "       vemd --check-config FILE\n"
                 "       vemd --print-config [FILE]\n"
                 "       vemd --version\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"check-config", required_argument, NULL, 'k'},
                                            {"print-config", no_argument, NULL, 'p'},
                                            {"foreground", no_argument, NULL, 'f'},
                                            {"version", no_argument, NULL, 'V'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *path = NULL, *check = NULL;
    bool print = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:k:pfVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = optarg;
            break;
        case 'p':
            print = true;
            break;
        case 'f':
            break; /* always in the foreground: systemd supervises */
        case 'V':
            printf("vemd %s\n", VEM_VERSION);
            return 0;
        case 'h':
            s_usage(stdout);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (print && optind < argc)
        path = argv[optind++];
    if (optind != argc) {
        s_usage(stderr);
        return 2;
    }
    char err[512];
    if (check) {
        vem_config_t *cfg = vem_config_load(check, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (s_check_curve(cfg, check) != 0) {
            vem_config_destroy(&cfg);
            return 1;
        }
        if (s_kafka_check(cfg, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", check, err);
            vem_config_destroy(&cfg);
            return 1;
        }
        vem_budget_t budget;
        int refused = vem_config_budget(cfg, &budget, err, sizeof err);
        vem_config_destroy(&cfg);
        if (refused) {
            fprintf(stderr, "%s: %s\n", check, err);
            vem_config_print_budget(&budget, stderr);
            return 1;
        }
        printf("%s: ok\n", check);
        return vem_config_print_budget(&budget, stdout) == 0 ? 0 : 1;
    }
    if (print) {
        vem_config_t *cfg = path ? vem_config_load(path, err, sizeof err) : vem_config_defaults();
        if (!cfg) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        int rc = vem_config_print(cfg, stdout) == 0 ? 0 : 1;
        vem_config_destroy(&cfg);
        return rc;
    }
    s_daemon_t d = {.cfg_path = path ? path : S_DEFAULT_CONFIG};
    d.cfg = vem_config_load(d.cfg_path, err, sizeof err);
    if (!d.cfg) {
        vem_log(VEM_LOG_ERR, "main", "%s", err);
        return 1;
    }
    vem_log_configure(d.cfg->log.level, (unsigned)d.cfg->log.burst);
    int rc = s_run(&d);
    vem_config_destroy(&d.cfg);
    return rc;
}
