/* vemctl spool — looks into vemd's input spool on disk. Reads only: safe while vemd runs.
 *
 *   vemctl spool status [--dir DIR | --config FILE] [--verbose] [--json]
 *
 * Prints the segments (their count; with --verbose each one's first seq and bytes), the total
 * bytes, the first and last seq on disk with their receipt times, and for each consumer
 * cursor (cursor.<name> in the directory: pg, kafka, ...) the cursor and the backlog, in
 * records (last seq - cursor) and in seconds (now - receipt time of the record after the
 * cursor; 0 when there is none). --json prints the same as one object, every segment
 * included. The directory is --dir, else spool.dir of --config FILE (default
 * /etc/vemd/vemd.cfg). Exit 0 done, 1 the spool or the configuration cannot be read, 2 usage.
 *
 *   vemctl spool replay --from SEQ|TIME [--to SEQ|TIME] [--dir DIR | --config FILE]
 *                       [--endpoint E]
 *
 * Asks the running vemd (control socket: --endpoint, $VEM_CONTROL, else control.endpoint of
 * the configuration) to re-run the spool records of the range through its workers and sinks,
 * say after a rule's threshold changed; the sinks' keys make it harmless. A TIME is resolved
 * to seqs here, from the records' receipt times. Only what the spool still holds can be
 * replayed (vemctl spool status shows the range). Exit 0 started, 1 refused, 2 usage. */
#include "vemctl.h"

#include "clock.h"
#include "config.h"
#include "spool.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_DEFAULT_CONFIG "/etc/vemd/vemd.cfg"

static int s_usage(void)
{
    fprintf(stderr,
            "usage: vemctl spool status [--dir DIR | --config FILE] [--verbose] [--json]\n"
            "       vemctl spool replay --from SEQ|TIME [--to SEQ|TIME] [--dir DIR | --config "
            "FILE] [--endpoint E]\n"
            "         TIME: @EPOCH or YYYY-MM-DD HH:MM[:SS] (Beijing time; Z for UTC)\n");
    return 2;
}

/* Backlog of a consumer: records after its cursor, and the age of the oldest of them. */
static void s_backlog(const char *dir, const vem_spool_info_t *info, uint64_t cursor,
                      uint64_t *records, double *seconds)
{
    *records = info->last_seq > cursor ? info->last_seq - cursor : 0;
    *seconds = 0;
    int64_t us;
    if (*records > 0 && vem_spool_received_us(dir, cursor + 1, &us) == 0) {
        int64_t age = vem_now_us() - us;
        *seconds = age > 0 ? (double)age / 1e6 : 0;
    }
}

/* Receipt time as UTC ISO 8601 with microseconds; "-" for 0 (no record). */
static const char *s_time(int64_t us, char *out, size_t cap)
{
    if (us == 0)
        return "-";
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06dZ", (int)(us % 1000000));
    return out;
}

static void s_print_text(const char *dir, const vem_spool_info_t *info, bool verbose)
{
    char when[64];
    printf("spool      %s\n", dir);
    printf("segments   %zu\n", info->n_segments);
    if (verbose)
        for (size_t i = 0; i < info->n_segments; i++)
            printf("  seg-%020" PRIu64 ".log  first %" PRIu64 "  %" PRIu64 " bytes\n",
                   info->segments[i].first_seq, info->segments[i].first_seq,
                   info->segments[i].bytes);
    printf("bytes      %" PRIu64 "\n", info->bytes);
    printf("first seq  %" PRIu64 "  received %s\n", info->first_seq,
           s_time(info->first_us, when, sizeof when));
    printf("last seq   %" PRIu64 "  received %s\n", info->last_seq,
           s_time(info->last_us, when, sizeof when));
    if (info->n_consumers == 0) {
        printf("consumers  none\n");
        return;
    }
    printf("%-16s %20s %16s %12s\n", "consumer", "cursor", "backlog_records", "backlog_s");
    for (size_t i = 0; i < info->n_consumers; i++) {
        uint64_t records;
        double seconds;
        s_backlog(dir, info, info->consumers[i].seq, &records, &seconds);
        printf("%-16s %20" PRIu64 " %16" PRIu64 " %12.1f\n", info->consumers[i].name,
               info->consumers[i].seq, records, seconds);
    }
}

static void s_print_json(const char *dir, const vem_spool_info_t *info)
{
    json_t *segments = json_array();
    for (size_t i = 0; i < info->n_segments; i++)
        json_array_append_new(segments, json_pack("{s:I, s:I}", "first_seq",
                                                  (json_int_t)info->segments[i].first_seq, "bytes",
                                                  (json_int_t)info->segments[i].bytes));
    json_t *consumers = json_array();
    for (size_t i = 0; i < info->n_consumers; i++) {
        uint64_t records;
        double seconds;
        s_backlog(dir, info, info->consumers[i].seq, &records, &seconds);
        json_array_append_new(
            consumers, json_pack("{s:s, s:I, s:I, s:f}", "name", info->consumers[i].name, "cursor",
                                 (json_int_t)info->consumers[i].seq, "backlog_records",
                                 (json_int_t)records, "backlog_seconds", seconds));
    }
    json_t *out =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "dir", dir, "segment_count",
                  (json_int_t)info->n_segments, "bytes", (json_int_t)info->bytes, "first_seq",
                  (json_int_t)info->first_seq, "last_seq", (json_int_t)info->last_seq,
                  "first_received_us", (json_int_t)info->first_us, "last_received_us",
                  (json_int_t)info->last_us, "segments", segments, "consumers", consumers);
    json_dumpf(out, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(out);
}

/* A position: digits are a seq; "@EPOCH" seconds; "YYYY-MM-DD[ T]HH:MM[:SS]" Beijing time
 * (a trailing Z: UTC). Sets *is_time when it is a time (in *value, microseconds). */
static bool s_position(const char *text, uint64_t *value, bool *is_time)
{
    char *end;
    *is_time = false;
    if (text[0] == '@') {
        long long s = strtoll(text + 1, &end, 10);
        *value = (uint64_t)s * 1000000u;
        *is_time = true;
        return *end == '\0' && s >= 0;
    }
    if (strspn(text, "0123456789") == strlen(text) && *text) {
        *value = strtoull(text, &end, 10);
        return *value > 0;
    }
    struct tm tm = {0};
    const char *rest = strptime(text, "%Y-%m-%d", &tm);
    if (!rest || (*rest != ' ' && *rest != 'T'))
        return false;
    const char *after = strptime(rest + 1, "%H:%M:%S", &tm);
    if (!after)
        after = strptime(rest + 1, "%H:%M", &tm);
    if (!after || (*after && strcmp(after, "Z") != 0))
        return false;
    int64_t epoch = (int64_t)timegm(&tm) - (*after == 'Z' ? 0 : 8 * 3600);
    *value = (uint64_t)epoch * 1000000u;
    *is_time = true;
    return epoch >= 0;
}

/* The seq of the first record received at or after us (first) or the last received at or
 * before it (!first); 0 when there is none. Reads the spool from its start. */
static uint64_t s_seq_at(const char *dir, uint64_t us, bool first, char *err, size_t errlen)
{
    vem_spool_reader_t *r = vem_spool_reader_new(dir, 1, err, errlen);
    if (!r)
        return 0;
    uint64_t found = 0;
    vem_spool_rec_t rec;
    int rc;
    while ((rc = vem_spool_reader_next(r, UINT64_MAX, &rec)) > 0) {
        if (rc != VEM_SPOOL_READ_RECORD)
            continue;
        if (first && (uint64_t)rec.received_us >= us) {
            found = rec.seq;
            break;
        }
        if (!first && (uint64_t)rec.received_us > us)
            break;
        if (!first)
            found = rec.seq;
    }
    vem_spool_reader_destroy(&r);
    if (!found)
        snprintf(err, errlen, "no spool record received %s that time",
                 first ? "at or after" : "by");
    return found;
}

/* vemctl spool replay: resolves the range, then asks the running vemd to re-run it. */
static int s_replay(int argc, char **argv)
{
    static const struct option options[] = {
        {"from", required_argument, NULL, 'f'},     {"to", required_argument, NULL, 't'},
        {"dir", required_argument, NULL, 'd'},      {"config", required_argument, NULL, 'c'},
        {"endpoint", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0}};
    const char *from = NULL, *to = NULL, *dir = NULL, *config = NULL;
    const char *endpoint = getenv("VEM_CONTROL");
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "f:t:d:c:e:", options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'e':
            endpoint = optarg;
            break;
        default:
            return s_usage();
        }
    }
    if (optind != argc || !from)
        return s_usage();
    char err[1024];
    vem_config_t *cfg = NULL;
    if (!dir || !endpoint) {
        cfg = vem_config_load(config ? config : S_DEFAULT_CONFIG, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "vemctl spool: %s\n", err);
            return 1;
        }
        if (!dir)
            dir = cfg->spool.dir;
        if (!endpoint)
            endpoint = cfg->control.endpoint;
    }
    int rc = 1;
    uint64_t lo, hi = UINT64_MAX;
    bool t_lo, t_hi = false;
    if (!s_position(from, &lo, &t_lo) || (to && !s_position(to, &hi, &t_hi))) {
        fprintf(stderr, "vemctl spool replay: a position is a seq, @EPOCH or YYYY-MM-DD HH:MM[:SS] "
                        "(Beijing time; Z for UTC)\n");
        vem_config_destroy(&cfg);
        return 2;
    }
    if ((t_lo && !(lo = s_seq_at(dir, lo, true, err, sizeof err))) ||
        (t_hi && !(hi = s_seq_at(dir, hi, false, err, sizeof err)))) {
        fprintf(stderr, "vemctl spool replay: %s\n", err);
        goto done;
    }
    char request[96];
    snprintf(request, sizeof request, "replay %llu %llu", (unsigned long long)lo,
             (unsigned long long)hi);
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(req, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (zmq_connect(req, endpoint) != 0 ||
        zmq_send(req, request, strlen(request), 0) != (int)strlen(request) ||
        zmq_msg_recv(&reply, req, 0) < 0) {
        fprintf(stderr, "vemctl spool replay: vemd at %s did not answer: %s\n", endpoint,
                zmq_strerror(zmq_errno()));
    } else {
        json_t *answer = json_loadb(zmq_msg_data(&reply), zmq_msg_size(&reply), 0, NULL);
        json_t *range = json_object_get(answer, "replaying");
        if (range) {
            printf("replaying inputs %lld..%lld\n",
                   (long long)json_integer_value(json_object_get(range, "from")),
                   (long long)json_integer_value(json_object_get(range, "to")));
            rc = 0;
        } else {
            const char *why = json_string_value(json_object_get(answer, "error"));
            fprintf(stderr, "vemctl spool replay: %s\n", why ? why : "unexpected answer");
        }
        json_decref(answer);
    }
    zmq_msg_close(&reply);
    zmq_close(req);
    zmq_ctx_term(ctx);
done:
    vem_config_destroy(&cfg);
    return rc;
}

int vemctl_spool_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return s_replay(argc, argv);
    if (argc < 2 || strcmp(argv[1], "status") != 0)
        return s_usage();
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'}, {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    const char *dir = NULL, *config = NULL;
    bool verbose = false, as_json = false;
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "d:c:vjh", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'j':
            as_json = true;
            break;
        default:
            return s_usage();
        }
    }
    if (optind != argc || (dir && config))
        return s_usage();
    char err[1024];
    vem_config_t *cfg = NULL;
    if (!dir) {
        cfg = vem_config_load(config ? config : S_DEFAULT_CONFIG, err, sizeof err);
        if (!cfg) {
            fprintf(stderr, "vemctl spool: %s\n", err);
            return 1;
        }
        dir = cfg->spool.dir;
    }
    vem_spool_info_t info;
    int rc = 1;
    if (vem_spool_inspect(dir, &info, err, sizeof err) != 0) {
        fprintf(stderr, "vemctl spool: %s\n", err);
        goto done;
    }
    if (as_json)
        s_print_json(dir, &info);
    else
        s_print_text(dir, &info, verbose);
    vem_spool_info_free(&info);
    rc = 0;
done:
    vem_config_destroy(&cfg);
    return rc;
}
