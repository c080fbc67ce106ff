/* vemctl status — asks a running vemd for its counters over the control socket.
 *
 *   vemctl status [--endpoint ENDPOINT] [--json] [--vehicles] [--timeout-ms MS]
 *
 * --vehicles asks for per-vehicle session figures (frames by command, duplicates, serial
 * gaps, clock skew) and prints one line per vehicle, or the daemon's JSON with --json.
 * The endpoint defaults to $VEM_CONTROL, else ipc:///run/vemd/control.sock. Prints one
 * "series value" line per metric (or the daemon's JSON with --json). Exit 0 when the daemon
 * answered, 1 when it did not, 2 on a usage error. */
#include "vemctl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static int s_usage(void)
{
    fprintf(stderr,
            "usage: vemctl status [--endpoint ENDPOINT] [--json] [--vehicles] [--timeout-ms MS]\n");
    return 2;
}

static long long s_count(json_t *frames, const char *cmd)
{
    return (long long)json_integer_value(json_object_get(frames, cmd));
}

static void s_print_vehicles(json_t *vehicles)
{
    printf("%-17s %6s %9s %7s %7s %6s %5s %8s %9s\n", "vin", "login", "realtime", "resend",
           "logout", "alarm", "dups", "missing", "skew_s");
    size_t i;
    json_t *v;
    json_array_foreach(vehicles, i, v)
    {
        json_t *f = json_object_get(v, "frames");
        printf("%-17s %6lld %9lld %7lld %7lld %6lld %5lld %8lld %9lld\n",
               json_string_value(json_object_get(v, "vin")), s_count(f, "login"),
               s_count(f, "realtime"), s_count(f, "resend"), s_count(f, "logout"),
               s_count(f, "removal_alarm"),
               (long long)json_integer_value(json_object_get(v, "duplicates")),
               (long long)json_integer_value(json_object_get(v, "missing")),
               (long long)json_integer_value(json_object_get(v, "skew_s")));
    }
}

int vemctl_status_main(int argc, char **argv)
{
    const char *endpoint = getenv("VEM_CONTROL");
    if (!endpoint)
        endpoint = "ipc:///run/vemd/control.sock";
    int timeout_ms = 3000;
    int as_json = 0;
    const char *request = "status";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (strcmp(argv[i], "--vehicles") == 0)
            request = "sessions";
        else
            return s_usage();
    }
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(req, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    int rc = 1;
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (zmq_connect(req, endpoint) != 0 ||
        zmq_send(req, request, strlen(request), 0) != (int)strlen(request) ||
        zmq_msg_recv(&reply, req, 0) < 0) {
        fprintf(stderr, "vemctl status: no answer from %s: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
        goto done;
    }
    json_error_t jerr;
    json_t *status = json_loadb(zmq_msg_data(&reply), zmq_msg_size(&reply), 0, &jerr);
    if (!status) {
        fprintf(stderr, "vemctl status: unreadable answer: %s\n", jerr.text);
        goto done;
    }
    if (as_json) {
        json_dumpf(status, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (strcmp(request, "sessions") == 0) {
        s_print_vehicles(json_object_get(status, "vehicles"));
    } else {
        printf("vemd %s, pid %lld, up %.0f s\n",
               json_string_value(json_object_get(status, "version")),
               (long long)json_integer_value(json_object_get(status, "pid")),
               json_real_value(json_object_get(status, "uptime_s")));
        const char *series;
        json_t *value;
        json_object_foreach(json_object_get(status, "metrics"), series, value)
            printf("%-70s %.15g\n", series, json_number_value(value));
    }
    json_decref(status);
    rc = 0;
done:
    zmq_msg_close(&reply);
    zmq_close(req);
    zmq_ctx_term(ctx);
    return rc;
}
