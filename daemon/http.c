/* http — metrics and health endpoint on libmicrohttpd; see http.h.
 *
 * libmicrohttpd runs its own polling thread (MHD_USE_INTERNAL_POLLING_THREAD); handlers here
 * render into a fresh buffer per request and hand it to MHD to free. Anything but GET of the
 * two paths gets 404/405, so the endpoint exposes nothing else. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vem_http {
    struct MHD_Daemon *mhd;
    vem_metrics_t *metrics;
    vem_http_health_fn health;
    void *arg;
    uint16_t port;
};

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Replies with a copy of a short text body. */
static enum MHD_Result s_reply_text(struct MHD_Connection *conn, unsigned status, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        abort();
    return s_reply(conn, status, copy, strlen(copy), "text/plain");
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    vem_http_t *self = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return s_reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *body = vem_metrics_render(self->metrics, &len);
        return s_reply(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4");
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[256] = "unhealthy";
        bool ok = !self->health || self->health(self->arg, why, sizeof why);
        char line[300];
        snprintf(line, sizeof line, "%s\n", ok ? "ok" : why);
        return s_reply_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, line);
    }
    return s_reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

vem_http_t *vem_http_new(const char *address, uint16_t port, vem_metrics_t *metrics,
                         vem_http_health_fn health, void *arg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "metrics address '%s' is not an IP literal", address);
        return NULL;
    }
    vem_http_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->metrics = metrics;
    self->health = health;
    self->arg = arg;
    self->mhd = MHD_start_daemon(flags, port, NULL, NULL, s_handle, self, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!self->mhd) {
        snprintf(err, errlen, "metrics endpoint %s:%u: cannot listen", address, port);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    return self;
}

uint16_t vem_http_port(const vem_http_t *self)
{
    return self->port;
}

void vem_http_destroy(vem_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    MHD_stop_daemon((*self_p)->mhd);
    free(*self_p);
    *self_p = NULL;
}
