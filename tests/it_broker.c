/* it_broker — vem-broker is a Kafka-protocol broker that separate processes share over TCP.
 *
 * The harness started vem-broker as its own process (VEM_TEST_KAFKA). Here: this process
 * produces and an independent client (kcat) consumes; kcat produces and our own consumer
 * (`vemctl kafka consume`, another process) consumes; and with the brokers taken down
 * (SIGUSR1) nothing is delivered until they come back (SIGUSR2), when everything is, and what
 * the broker held before the outage is still there. Each test uses its own topic (the mock
 * cluster creates topics on first use) and its own message texts. */
#include "testutil.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long s_failed;

static void s_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (msg->err)
        s_failed++;
}

static rd_kafka_t *s_producer(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", vem_test_env("VEM_TEST_KAFKA"),
                                       errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "message.timeout.ms", "120000", errstr, sizeof errstr);
    /* The outage test refuses connections on purpose: keep librdkafka's log to criticals. */
    rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, s_on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ck_assert_msg(rk != NULL, "%s", errstr);
    s_failed = 0;
    return rk;
}

static void s_produce(rd_kafka_t *rk, const char *topic, const char *text)
{
    ck_assert_int_eq(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE((void *)text, strlen(text)), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Runs cmd and returns everything it printed (caller frees), with its exit status. */
static char *s_capture(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, len = 0, n;
    char *out = malloc(cap);
    while ((n = fread(out + len, 1, cap - 1 - len, p)) > 0)
        len += n;
    out[len] = '\0';
    *status = pclose(p);
    return out;
}

/* The expected lines "PREFIX-0\n" .. "PREFIX-(n-1)\n" in order. */
static char *s_lines(const char *prefix, int n)
{
    char *text = calloc(1, (size_t)n * 64 + 1);
    for (int i = 0; i < n; i++)
        sprintf(text + strlen(text), "%s-%d\n", prefix, i);
    return text;
}

START_TEST(we_produce_kcat_consumes)
{
    char topic[64], prefix[64];
    snprintf(topic, sizeof topic, "it.broker.a.%d", (int)getpid());
    snprintf(prefix, sizeof prefix, "reading-%d", (int)getpid());
    rd_kafka_t *rk = s_producer();
    for (int i = 0; i < 50; i++) {
        char text[128];
        snprintf(text, sizeof text, "%s-%d", prefix, i);
        s_produce(rk, topic, text);
    }
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(s_failed, 0);
    rd_kafka_destroy(rk);

    /* One partition keeps order; the mock creates new topics with several, so read them all
     * and compare the sorted sets. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "kcat -C -b '%s' -t '%s' -o beginning -c 50 -e -q | sort -t- -k3n",
             vem_test_env("VEM_TEST_KAFKA"), topic);
    int status;
    char *got = s_capture(cmd, &status);
    ck_assert_int_eq(status, 0);
    char *want = s_lines(prefix, 50);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
}
END_TEST

START_TEST(kcat_produces_vemctl_consumes)
{
    char topic[64], prefix[64], cmd[512];
    snprintf(topic, sizeof topic, "it.broker.b.%d", (int)getpid());
    snprintf(prefix, sizeof prefix, "violation-%d", (int)getpid());
    char *lines = s_lines(prefix, 20);
    snprintf(cmd, sizeof cmd, "kcat -P -b '%s' -t '%s'", vem_test_env("VEM_TEST_KAFKA"), topic);
    FILE *p = popen(cmd, "w");
    ck_assert_ptr_nonnull(p);
    fputs(lines, p);
    ck_assert_int_eq(pclose(p), 0);

    snprintf(cmd, sizeof cmd,
             "%s/vemctl kafka consume --brokers '%s' --topic '%s' --count 20 --timeout-ms 20000 "
             "| sort -t- -k3n",
             vem_test_bin_dir(), vem_test_env("VEM_TEST_KAFKA"), topic);
    int status;
    char *got = s_capture(cmd, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_str_eq(got, lines);
    free(got);
    free(lines);
}
END_TEST

START_TEST(outage_delays_but_loses_nothing)
{
    pid_t broker = (pid_t)atol(vem_test_env("VEM_TEST_BROKER_PID"));
    char topic[64];
    snprintf(topic, sizeof topic, "it.broker.c.%d", (int)getpid());
    rd_kafka_t *rk = s_producer();
    s_produce(rk, topic, "before-0");
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);

    ck_assert_int_eq(kill(broker, SIGUSR1), 0); /* all brokers down */
    sleep(1);
    s_produce(rk, topic, "during-0");
    s_produce(rk, topic, "during-1");
    /* Nothing can be delivered while the brokers are away. */
    ck_assert_int_eq(rd_kafka_flush(rk, 3000), RD_KAFKA_RESP_ERR__TIMED_OUT);
    ck_assert_int_eq(rd_kafka_outq_len(rk), 2);
    ck_assert_int_eq(kill(broker, SIGUSR2), 0); /* back */
    ck_assert_int_eq(rd_kafka_flush(rk, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(s_failed, 0);
    rd_kafka_destroy(rk);

    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s/vemctl kafka consume --brokers '%s' --topic '%s' --count 3 --timeout-ms 20000 "
             "| sort",
             vem_test_bin_dir(), vem_test_env("VEM_TEST_KAFKA"), topic);
    int status;
    char *got = s_capture(cmd, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_str_eq(got, "before-0\nduring-0\nduring-1\n");
    free(got);
}
END_TEST

Suite *vem_suite_broker(void);
Suite *vem_suite_broker(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("broker");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, we_produce_kcat_consumes);
    tcase_add_test(tc, kcat_produces_vemctl_consumes);
    tcase_add_test(tc, outage_delays_but_loses_nothing);
    suite_add_tcase(s, tc);
    return s;
}
