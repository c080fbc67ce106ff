/* config — vemd's configuration: one table of keys drives loading, defaults, bounds, reload,
 * --check-config and --print-config.
 *
 * The file is libconfig syntax with one group per section (`terminals: { endpoint = "...";
 * };`). Every key has a type, a default, bounds (numbers) or allowed values (enumerations), a
 * reloadable flag and a one-line description. Unknown keys, wrong types and values out of
 * bounds are errors naming the file, the line and the key; a file that sets no key and keys
 * that cannot work together (cross-key checks, after loading) are errors naming the file.
 * Other modules see only the plain struct below, never libconfig types.
 *
 * Ownership: the caller owns a vem_config_t and its strings; vem_config_destroy frees both.
 * Main reads it; actors get the values they need at start (and atomics for the reloadable
 * ones they use). */
#ifndef VEM_CONFIG_H
#define VEM_CONFIG_H

#include "rules.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    struct {
        char *endpoint;
        int64_t max_connections, max_frame_bytes, idle_timeout_s, backlog, rcvhwm, keepalive_idle_s;
        int64_t send_timeout_s;                                 /* ZMQ_TCP_MAXRT */
        int64_t reject_bytes, reject_records, reject_share_pct; /* per connection */
        int64_t max_per_address, new_per_address_s;             /* per source address */
        char *reply_mode;                                       /* "none" | "hj1239" */
        char *signatures;                                       /* "off" | "flag" | "enforce" */
        bool bind_vin;                                          /* one connection, one vehicle */
        int64_t activations_per_s;         /* activations judged per second, at most */
        int64_t activations_per_address_s; /* ... and from one address */
    } terminals;
    struct {
        char *endpoint;                             /* "" for none */
        char *curve_server_key, *curve_clients_dir; /* "" for a plain endpoint */
        int64_t max_message_bytes;                  /* ZMQ_MAXMSGSIZE */
    } gateways;
    struct {
        char *endpoint; /* "" for none */
        int64_t max_message_bytes, max_inflight, max_stations, future_tolerance_s, dedup_readings,
            max_plates, max_json_depth;
        char *curve_server_key, *curve_clients_dir; /* "" for a plain endpoint */
    } stations;
    struct {
        char *endpoint;
        int64_t max_message_bytes;
    } control;
    struct {
        bool enable;
        char *address;
        int64_t port;
    } metrics;
    struct {
        int64_t workers, queue_hwm, drain_timeout_s, dedup_window;
        int64_t sample_past_days, sample_future_s; /* window of accepted frame times */
        int64_t max_sessions, session_idle_s;      /* per-worker session table bounds */
    } pipeline;
    struct {
        bool enable;
        char *conninfo;
        int64_t batch_rows, batch_ms, queue_hwm, partitions_ahead_days, retry_max_s, retention_days;
        int64_t connections;
    } pg;
    struct {
        bool enable;
        char *brokers;
        char *topic_violations, *topic_samples, *topic_terminal, *topic_rsd; /* "": off */
        char *compression; /* "none" | "gzip" | "snappy" | "lz4" | "zstd" */
        int64_t linger_ms, batch_bytes, batch_messages, queue_messages, queue_kbytes;
        int64_t message_timeout_ms, queue_hwm, retry_max_s;
        char *properties; /* "name=value" lines, '\n'-separated; "" for none */
    } kafka;
    struct {
        char *dir;
        int64_t max_bytes, segment_bytes;
        bool fsync;
    } spool;
    struct {
        bool enable;
        int64_t checkpoint_interval_s;
        int64_t completeness_delay_h;
        int64_t rsd_history_readings;
        char *rsd_limit_column; /* "a" | "b" */
        char *rsd_limit_b_from; /* "" | "YYYY-MM-DD" */
        char *disabled;         /* rule names, separated by commas or spaces */
        vem_rules_config_t t;   /* every threshold; enabled[] and rsd_column follow the two
                                 * strings above once the file is loaded (or reloaded) */
    } rules;
    struct {
        int level; /* vem_log_level_t, from "err" | "warning" | "notice" | "info" | "debug" */
        int64_t burst;
    } log;
} vem_config_t;

/* VEM_CONF_LIST: an array of strings in the file, kept as one string of '\n'-separated items
 * (each "name=value"), so every other part of the table treats it as a string. */
typedef enum {
    VEM_CONF_BOOL,
    VEM_CONF_INT,
    VEM_CONF_STRING,
    VEM_CONF_ENUM,
    VEM_CONF_REAL, /* double; "unset" (NaN) where the rules allow it; bounds: rules_config.c */
    VEM_CONF_UINT, /* unsigned; bounds: rules_config.c */
    VEM_CONF_LIST, /* strings: see above */
} vem_conf_type_t;

/* One row of the key table. */
typedef struct {
    const char *key; /* "section.name" */
    vem_conf_type_t type;
    size_t offset;       /* of the value in vem_config_t */
    const char *dflt;    /* default, as it would be written in the file */
    int64_t min, max;    /* VEM_CONF_INT bounds */
    const char *allowed; /* VEM_CONF_ENUM: values separated by '|' */
    bool reloadable;     /* SIGHUP applies it without a restart */
    const char *help;    /* one line */
} vem_conf_key_t;

/* The key table (static, in file order of --print-config); *n set to its length. */
const vem_conf_key_t *vem_config_keys(size_t *n);

/* A configuration with every default; caller owns it. */
vem_config_t *vem_config_defaults(void);

/* Loads path over the defaults. NULL, with "FILE:LINE: what is wrong" (or "FILE: ...") in err,
 * on any error; a file that sets no key at all is one. */
vem_config_t *vem_config_load(const char *path, char *err, size_t errlen);

/* Loads a configuration from text (named name in errors), as vem_config_load does a file. The
 * fuzzer's way in; libconfig still follows an @include in the text. */
vem_config_t *vem_config_parse(const char *text, const char *name, char *err, size_t errlen);

/* Frees cfg and its strings; accepts NULL; sets *cfg_p to NULL. */
void vem_config_destroy(vem_config_t **cfg_p);

/* Writes cfg as a complete, annotated configuration file that loads back to the same values.
 * 0 or -1 on a write error. */
int vem_config_print(const vem_config_t *cfg, FILE *out);

/* Copies the reloadable keys of fresh into live. Keys that differ but need a restart are
 * listed in err ("" when none); returns 0. */
int vem_config_reload(vem_config_t *live, const vem_config_t *fresh, char *err, size_t errlen);

/* What the queues and buffers of a configuration may hold when full, in bytes (config.c says
 * what each figure assumes), and what the machine offers. */
typedef struct {
    uint64_t reassembly;      /* terminals.max_connections x terminals.max_frame_bytes */
    uint64_t socket_queues;   /* terminals.max_connections x terminals.rcvhwm reads of <= 8 KiB */
    uint64_t zmq_connections; /* libzmq's own ~21 KiB per connection (NOTES.md) */
    uint64_t worker_queues;   /* ingest -> workers: 2 x pipeline.queue_hwm inputs per worker */
    uint64_t sink_queues;     /* workers -> PostgreSQL sink: 2 x pg.queue_hwm messages per worker */
    uint64_t kafka_queue;     /* workers -> Kafka sink, and librdkafka's queue.buffering bound */
    uint64_t sink_batch;      /* the sink's open batch: pg.batch_rows rows */
    uint64_t total;           /* the sum of the above */
    unsigned workers;         /* worker threads assumed: pipeline.workers, or the online cores */
    uint64_t memory;          /* physical memory of the machine; 0 when unknown */
    uint64_t descriptors;     /* terminals.max_connections + a reserve for everything else */
    uint64_t nofile;          /* soft RLIMIT_NOFILE; UINT64_MAX when unlimited */
} vem_budget_t;

/* Fills *out with the budget of cfg and checks it against this machine: -1, with the reason in
 * err, when the total exceeds half of physical memory (naming the biggest part) or the
 * descriptors do not fit under the soft RLIMIT_NOFILE (naming both); else 0. */
int vem_config_budget(const vem_config_t *cfg, vem_budget_t *out, char *err, size_t errlen);

/* Writes the budget, a part per line with what it grows with, in binary units. 0 or -1. */
int vem_config_print_budget(const vem_budget_t *b, FILE *out);

#endif
