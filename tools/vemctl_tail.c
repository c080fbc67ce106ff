/* vemctl tail — a topic's events for people.
 *
 *   vemctl tail [--brokers ADDR | --config FILE] [--from-beginning] [--key K] [--count N]
 *               [--timeout-ms MS] [--pretty | --lines] TOPIC
 *
 * Reads every partition of TOPIC from its end (new events only) or, with --from-beginning,
 * from its start, without joining a consumer group (nothing is committed), and prints each
 * event: pretty JSON on a terminal, one line per event in a pipe (--pretty and --lines
 * choose). --key keeps only the events of one vehicle (the key is the VIN, or the plate). The
 * brokers come from --brokers, else from kafka.brokers of FILE (default /etc/vemd/vemd.cfg),
 * whose kafka.properties (security protocol, SASL, TLS) are used too.
 * Ends after N events (exit 1 when the timeout comes first), at the timeout, or on Ctrl-C.
 * Exit 2 on a usage error. */
#include "config.h"
#include "vemctl.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_usage(void)
{
    fprintf(stderr,
            "usage: vemctl tail [--brokers ADDR | --config FILE] [--from-beginning] [--key K]\n"
            "                   [--count N] [--timeout-ms MS] [--pretty | --lines] TOPIC\n");
    return 2;
}

static long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Sets each "name=value" line of props on conf; -1 with the reason printed. */
static int s_properties(rd_kafka_conf_t *conf, const char *props)
{
    char errstr[512];
    for (const char *p = props; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[1024];
        snprintf(item, sizeof item, "%.*s", (int)len, p);
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            if (rd_kafka_conf_set(conf, item, eq + 1, errstr, sizeof errstr)) {
                fprintf(stderr, "vemctl tail: %s\n", errstr);
                return -1;
            }
        }
        p = end ? end + 1 : p + len;
    }
    return 0;
}

static void s_print(const rd_kafka_message_t *m, bool pretty)
{
    const char *text = m->payload ? (const char *)m->payload : "";
    if (pretty) {
        json_error_t err;
        json_t *j = json_loadb(text, m->len, 0, &err);
        if (j) {
            json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
            fputc('\n', stdout);
            json_decref(j);
            fflush(stdout);
            return;
        }
    }
    printf("%.*s\n", (int)m->len, text); /* events are one line already */
    if (pretty)
        fflush(stdout);
}

int vemctl_tail_main(int argc, char **argv)
{
    const char *brokers = NULL, *config = NULL, *key = NULL, *topic = NULL;
    bool beginning = false, pretty = isatty(STDOUT_FILENO);
    long count = -1, timeout_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
            brokers = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--from-beginning") == 0)
            beginning = true;
        else if (strcmp(argv[i], "--pretty") == 0)
            pretty = true;
        else if (strcmp(argv[i], "--lines") == 0)
            pretty = false;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return s_usage() - 2; /* asked for: exit 0 */
        else if (argv[i][0] != '-' && !topic)
            topic = argv[i];
        else
            return s_usage();
    }
    if (!topic)
        return s_usage();
    char errstr[512];
    vem_config_t *cfg = NULL;
    if (!brokers) {
        cfg = vem_config_load(config ? config : "/etc/vemd/vemd.cfg", errstr, sizeof errstr);
        if (!cfg) {
            fprintf(stderr, "vemctl tail: %s (or give --brokers)\n", errstr);
            return 2;
        }
        brokers = cfg->kafka.brokers;
    }
    char group[64]; /* assign() needs a group id even without group membership */
    snprintf(group, sizeof group, "vemctl-tail-%ld", (long)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 1;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof errstr)) {
        fprintf(stderr, "vemctl tail: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        vem_config_destroy(&cfg);
        return 2;
    }
    if (cfg && s_properties(conf, cfg->kafka.properties) != 0) {
        rd_kafka_conf_destroy(conf);
        vem_config_destroy(&cfg);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "vemctl tail: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        vem_config_destroy(&cfg);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "vemctl tail: topic %s: %s\n", topic,
                rd_kafka_err2str(err             ? err
                                 : md->topic_cnt ? md->topics[0].err
                                                 : err));
        goto done;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "vemctl tail: assign: %s\n", rd_kafka_err2str(err));
        goto done;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    long got = 0, deadline = timeout_ms >= 0 ? s_now_ms() + timeout_ms : -1;
    size_t klen = key ? strlen(key) : 0;
    while (!s_stop && (count < 0 || got < count) && (deadline < 0 || s_now_ms() < deadline)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "vemctl tail: %s\n", rd_kafka_message_errstr(m));
        } else if (!key || (m->key_len == klen && memcmp(m->key, key, klen) == 0)) {
            s_print(m, pretty);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    rc = count >= 0 && got < count ? 1 : 0;
    if (rc)
        fprintf(stderr, "vemctl tail: %ld of %ld events before the timeout\n", got, count);
    rd_kafka_consumer_close(rk);
done:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    vem_config_destroy(&cfg);
    return rc;
}
