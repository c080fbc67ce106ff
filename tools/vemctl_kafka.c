/* vemctl kafka — a small producer and consumer of ours, for operators, tests and the demo.
 *
 *   vemctl kafka produce --brokers ADDR --topic T [--key K]
 *       one message per stdin line; waits for every delivery report (queued is not
 *       delivered); exit 1 if any message failed
 *   vemctl kafka consume --brokers ADDR --topic T [--count N] [--timeout-ms MS] [--keys]
 *       prints each message value as a line (key TAB value with --keys) from the beginning
 *       of every partition; exit 0 after N messages (or at the timeout without --count),
 *       1 when fewer than N arrived before the timeout
 * Exit 2 on a usage error. */
#include "vemctl.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *brokers, *topic, *key;
    long count;
    int timeout_ms;
    int keys;
} s_opts_t;

static int s_usage(void)
{
    fprintf(stderr, "usage: vemctl kafka produce --brokers ADDR --topic T [--key K]\n"
                    "       vemctl kafka consume --brokers ADDR --topic T [--count N] "
                    "[--timeout-ms MS] [--keys]\n");
    return 2;
}

static void s_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    long *failed = opaque;
    if (msg->err) {
        fprintf(stderr, "vemctl kafka: delivery failed: %s\n", rd_kafka_err2str(msg->err));
        (*failed)++;
    }
}

static int s_produce(const s_opts_t *o)
{
    char errstr[512];
    long failed = 0, sent = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "30000", errstr, sizeof errstr)) {
        fprintf(stderr, "vemctl kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, s_on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "vemctl kafka: %s\n", errstr);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->topic),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_VALUE(line, (size_t)len),
                                        RD_KAFKA_V_KEY(o->key, o->key ? strlen(o->key) : 0),
                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 100);
        if (err) {
            fprintf(stderr, "vemctl kafka: produce: %s\n", rd_kafka_err2str(err));
            failed++;
        } else {
            sent++;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
    if (err) {
        fprintf(stderr, "vemctl kafka: %ld messages not delivered: %s\n",
                (long)rd_kafka_outq_len(rk), rd_kafka_err2str(err));
        failed++;
    }
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}

static long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int s_consume(const s_opts_t *o)
{
    char errstr[512];
    /* assign() needs a group id even without group membership; nothing is committed. */
    char group[64];
    snprintf(group, sizeof group, "vemctl-%ld", (long)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr)) {
        fprintf(stderr, "vemctl kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "vemctl kafka: %s\n", errstr);
        return 1;
    }
    /* Every partition from its beginning, without a consumer group: a read-only look. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "vemctl kafka: topic %s: %s\n", o->topic,
                rd_kafka_err2str(err             ? err
                                 : md->topic_cnt ? md->topics[0].err
                                                 : err));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, o->topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "vemctl kafka: assign: %s\n", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return 1;
    }
    long got = 0, deadline = s_now_ms() + o->timeout_ms;
    while ((o->count < 0 || got < o->count) && s_now_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            if (o->keys)
                printf("%.*s\t", (int)msg->key_len, msg->key ? (const char *)msg->key : "");
            printf("%.*s\n", (int)msg->len, msg->payload ? (const char *)msg->payload : "");
            got++;
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "vemctl kafka: %s\n", rd_kafka_message_errstr(msg));
        }
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (o->count >= 0 && got < o->count) {
        fprintf(stderr, "vemctl kafka: %ld of %ld messages before the timeout\n", got, o->count);
        return 1;
    }
    return 0;
}

int vemctl_kafka_main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage();
    s_opts_t o = {.count = -1, .timeout_ms = 10000};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
            o.brokers = argv[++i];
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
            o.topic = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            o.key = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            o.count = atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            o.timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--keys") == 0)
            o.keys = 1;
        else
            return s_usage();
    }
    if (!o.brokers || !o.topic)
        return s_usage();
    if (strcmp(argv[1], "produce") == 0)
        return s_produce(&o);
    if (strcmp(argv[1], "consume") == 0)
        return s_consume(&o);
    return s_usage();
}
