/* control — REP socket answering status requests; see control.h.
 *
 * Thread: its own actor. Replies are built with jansson, so label values with quotes or
 * backslashes come out as valid JSON without our own escaping. */
#include "control.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_add_series(void *arg, const char *series, double value)
{
    json_object_set_new(arg, series, json_real(value));
}

static json_t *s_answer(const vem_control_args_t *args, const char *request)
{
    if (strcmp(request, "ping") == 0)
        return json_pack("{s:b}", "pong", 1);
    if (strcmp(request, "status") == 0) {
        json_t *metrics = json_object();
        vem_metrics_each(args->metrics, s_add_series, metrics);
        return json_pack("{s:s, s:s, s:i, s:f, s:o}", "daemon", "vemd", "version", args->version,
                         "pid", (json_int_t)getpid(), "uptime_s",
                         (double)(s_now_us() - args->started_us) / 1e6, "metrics", metrics);
    }
    return json_pack("{s:s, s:s}", "error", "unknown request", "request", request);
}

void vem_control_actor(void *pipe, void *args_)
{
    const vem_control_args_t *args = args_;
    void *rep = zmq_socket(args->zctx, ZMQ_REP);
    int zero = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(rep, args->endpoint) != 0) {
        char err[300];
        snprintf(err, sizeof err, "cannot bind control endpoint %s: %s", args->endpoint,
                 zmq_strerror(zmq_errno()));
        zmq_close(rep);
        vem_actor_ready(pipe, err);
        return;
    }
    vem_actor_ready(pipe, NULL);
    for (;;) {
        zmq_pollitem_t items[] = {{pipe, 0, ZMQ_POLLIN, 0}, {rep, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char msg[16];
            int len = zmq_recv(pipe, msg, sizeof msg, 0);
            if (len < 0 || vem_actor_is_term(msg, (size_t)len))
                break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            char request[64];
            int len = zmq_recv(rep, request, sizeof request - 1, 0);
            if (len < 0)
                continue;
            request[(size_t)len < sizeof request ? (size_t)len : sizeof request - 1] = '\0';
            json_t *answer = s_answer(args, request);
            char *text = json_dumps(answer, JSON_COMPACT);
            json_decref(answer);
            zmq_send(rep, text, strlen(text), 0);
            free(text);
        }
    }
    zmq_close(rep);
}
