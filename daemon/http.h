/* http — the metrics and health endpoint (libmicrohttpd, its own internal thread).
 *
 *   GET /metrics   Prometheus text from the registry
 *   GET /healthz   200 "ok" while the health callback says so, else 503 with its reason
 *
 * The server only reads: the registry's atomics and whatever the health callback reads,
 * which must be safe to call from the server's thread. */
#ifndef VEM_HTTP_H
#define VEM_HTTP_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vem_http vem_http_t;

/* Answers whether the daemon is healthy; on false writes a one-line reason into why. */
typedef bool (*vem_http_health_fn)(void *arg, char *why, size_t whylen);

/* Listens on address:port (IPv4 or IPv6 literal; port 0 picks a free one). The registry and
 * arg stay owned by the caller and must outlive the server. NULL with a message in err. */
vem_http_t *vem_http_new(const char *address, uint16_t port, vem_metrics_t *metrics,
                         vem_http_health_fn health, void *arg, char *err, size_t errlen);

/* The port actually bound. */
uint16_t vem_http_port(const vem_http_t *self);

/* Stops the server thread and frees it; accepts NULL; sets *self_p to NULL. */
void vem_http_destroy(vem_http_t **self_p);

#endif
