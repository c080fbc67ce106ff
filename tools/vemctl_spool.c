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
 * /etc/vemd/vemd.cfg). Exit 0 done, 1 the spool or the configuration cannot be read, 2 usage. */
#include "vemctl.h"

#include "clock.h"
#include "config.h"
#include "spool.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_DEFAULT_CONFIG "/etc/vemd/vemd.cfg"

static int s_usage(void)
{
    fprintf(stderr,
            "usage: vemctl spool status [--dir DIR | --config FILE] [--verbose] [--json]\n");
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

int vemctl_spool_main(int argc, char **argv)
{
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
