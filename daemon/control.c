/* control — REP socket answering status requests; see control.h.
 *
 * Thread: its own actor. Replies are built with jansson, so label values with quotes or
 * backslashes come out as valid JSON without our own escaping. */
#include "control.h"

#include "clock.h"
#include "log.h"
#include "pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static void s_add_series(void *arg, const char *series, double value)
{
    json_object_set_new(arg, series, json_real(value));
}

/* Asks every worker for its vehicles and merges the answers. A worker that does not answer
 * within a second is reported, not waited for. */
static json_t *s_sessions(const vem_control_args_t *args)
{
    json_t *vehicles = json_array(), *missing = json_array();
    for (unsigned i = 0; i < args->workers; i++) {
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, VEM_WORKER_QUERY_ENDPOINT, i);
        void *req = zmq_socket(args->zctx, ZMQ_REQ);
        int zero = 0, timeout = 1000;
        zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_msg_t reply;
        zmq_msg_init(&reply);
        json_t *part = NULL;
        if (zmq_connect(req, endpoint) == 0 && zmq_send(req, "sessions", 8, 0) == 8 &&
            zmq_msg_recv(&reply, req, 0) >= 0)
            part = json_loadb(zmq_msg_data(&reply), zmq_msg_size(&reply), 0, NULL);
        if (json_is_array(part))
            json_array_extend(vehicles, part);
        else
            json_array_append_new(missing, json_integer(i));
        json_decref(part);
        zmq_msg_close(&reply);
        zmq_close(req);
    }
    return json_pack("{s:o, s:o}", "vehicles", vehicles, "workers_not_answering", missing);
}

/* Hands "replay FROM TO" to ingest, which owns the spool, and returns its answer. */
static json_t *s_replay(const vem_control_args_t *args, const char *request)
{
    void *req = zmq_socket(args->zctx, ZMQ_REQ);
    int zero = 0, timeout = 2000;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    json_t *answer = NULL;
    if (zmq_connect(req, VEM_INGEST_CONTROL_ENDPOINT) == 0 &&
        zmq_send(req, request, strlen(request), 0) == (int)strlen(request) &&
        zmq_msg_recv(&reply, req, 0) >= 0)
        answer = json_loadb(zmq_msg_data(&reply), zmq_msg_size(&reply), 0, NULL);
    zmq_msg_close(&reply);
    zmq_close(req);
    return answer ? answer : json_pack("{s:s}", "error", "ingest did not answer");
}

static json_t *s_answer(const vem_control_args_t *args, const char *request)
{
    if (strcmp(request, "sessions") == 0)
        return s_sessions(args);
    if (strncmp(request, "replay ", 7) == 0)
        return s_replay(args, request);
    if (strcmp(request, "ping") == 0)
        return json_pack("{s:b}", "pong", 1);
    if (strcmp(request, "status") == 0) {
        json_t *metrics = json_object();
        vem_metrics_each(args->metrics, s_add_series, metrics);
        return json_pack("{s:s, s:s, s:i, s:f, s:o}", "daemon", "vemd", "version", args->version,
                         "pid", (json_int_t)getpid(), "uptime_s",
                         (double)(vem_now_us() - args->started_us) / 1e6, "metrics", metrics);
    }
    return json_pack("{s:s, s:s}", "error", "unknown request", "request", request);
}

typedef struct {
    const vem_control_args_t *args;
    vem_counter_t *refused;
} s_served_t;

/* Answers one request waiting on rep. */
static void s_request(void *ctx, void *rep)
{
    const s_served_t *served = ctx;
    const vem_control_args_t *args = served->args;
    char request[64];
    int len = zmq_recv(rep, request, sizeof request - 1, 0);
    if (len < 0)
        return;
    request[(size_t)len < sizeof request ? (size_t)len : sizeof request - 1] = '\0';
    json_t *answer;
    if (args->max_message > 0 && len > args->max_message) {
        vem_counter_add(served->refused, 1);
        vem_log(VEM_LOG_WARNING, "control",
                "request of %d bytes refused: over control.max_message_bytes %lld", len,
                (long long)args->max_message);
        answer = json_pack("{s:s}", "error", "request over control.max_message_bytes");
    } else {
        answer = s_answer(args, request);
    }
    char *text = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    zmq_send(rep, text, strlen(text), 0);
    free(text);
}

void vem_control_actor(void *pipe, void *args_)
{
    const vem_control_args_t *args = args_;
    void *rep = zmq_socket(args->zctx, ZMQ_REP);
    int zero = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    /* a request over max_message is answered with an error, counted and logged; libzmq drops
     * the peer of one over four times that, before it costs us anything */
    int64_t drop_over = args->max_message * 4 + 1024;
    if (args->max_message > 0)
        zmq_setsockopt(rep, ZMQ_MAXMSGSIZE, &drop_over, sizeof drop_over);
    vem_counter_t *refused =
        vem_metrics_counter(args->metrics, "vem_control_refused_total",
                            "Control requests refused: over control.max_message_bytes.", NULL);
    if (zmq_bind(rep, args->endpoint) != 0) {
        char err[300];
        snprintf(err, sizeof err, "cannot bind control endpoint %s: %s", args->endpoint,
                 zmq_strerror(zmq_errno()));
        zmq_close(rep);
        vem_actor_ready(pipe, err);
        return;
    }
    vem_actor_ready(pipe, NULL);
    s_served_t served = {args, refused};
    vem_actor_serve(pipe, rep, s_request, &served);
    zmq_close(rep);
}
