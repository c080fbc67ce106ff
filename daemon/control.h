/* control — the local control socket that `vemctl status` talks to.
 *
 * An actor owning one ZMQ_REP socket bound to the configured endpoint (ipc:// under the
 * runtime directory by default). Requests are single words; replies are JSON objects:
 *   "status"  {"daemon": "vemd", "version", "pid", "uptime_s", "metrics": {series: value}}
 *   "sessions" {"vehicles": [one object per vehicle, from every worker's query socket]}
 *   "ping"    {"pong": true}
 *   "replay FROM TO"  {"replaying": {"from", "to"}} or {"error": why}: ingest re-runs the
 *             spool records FROM..TO through the workers (vemctl spool replay)
 *   anything else  {"error": "unknown request", "request": ...}
 * The metrics registry is read-only here and owned by the caller. */
#ifndef VEM_CONTROL_H
#define VEM_CONTROL_H

#include "actor.h"
#include "metrics.h"

#include <stdint.h>

typedef struct {
    void *zctx;             /* ZeroMQ context the daemon runs in */
    const char *endpoint;   /* where to bind, e.g. "ipc:///run/vemd/control.sock" */
    int64_t max_message;    /* longer requests are refused (counted), 4x longer dropped; 0: none */
    vem_metrics_t *metrics; /* what "status" reports */
    const char *version;
    int64_t started_us; /* process start, for uptime */
    unsigned workers;   /* how many worker query sockets to ask for "sessions" */
} vem_control_args_t;

/* Actor body: bind, report ready, answer requests until $TERM. */
void vem_control_actor(void *pipe, void *args);

#endif
