/* it_kafka — vem-sim → vemd → vem-broker, read back by consumers in other processes (kcat, and
 * `vemctl tail`), against vem-sim's truth and PostgreSQL, never against vemd's own counts.
 *
 *   end_to_end         every sample, terminal event and violation arrives, keyed by VIN, in
 *                      one partition per vehicle and in the order vemd received it, valid
 *                      against its JSON Schema (python3-jsonschema, tests/kafka_validate.py);
 *                      sample counts per vehicle equal what the trucks generated, terminal
 *                      events what they sent, violations what PostgreSQL holds; `vemctl tail`
 *                      prints the same events for one vehicle
 *   broker_outage_20s  vem-broker takes its brokers down for 20 s mid-run (SIGUSR1/SIGUSR2)
 *                      with message.timeout.ms below the outage: PostgreSQL keeps receiving
 *                      rows meanwhile; afterwards every event has arrived (deduplicated by
 *                      event id, none missing), failures and retries are counted, and
 *                      PostgreSQL has every row
 *   kill9_in_flight    vemd is killed with SIGKILL twice while events are in flight and
 *                      restarted on the same spool: none is missing from the topic
 *   verdict_does_not_settle_undelivered_input  a vem-broker of its own whose samples topic
 *                      alone is led by a broker that goes down (--leader, --fault-broker) after
 *                      a registered truck's trip, killed before its logout, sends one more frame
 *                      X: when the silence sweep's obd.nox_window verdict, a record of X in a
 *                      later worker message, is in the violations topic, cursor.kafka must
 *                      still be below X, whose samples are not delivered; after a stop, the
 *                      broker back and a restart, every sample PostgreSQL holds is in Kafka
 *   renew_without_reports  VEM_TEST_KAFKA_FATAL_AFTER raises a fatal producer error with
 *                      hundreds of events in librdkafka, whose purged reports the renewal does
 *                      not wait for: every sample still arrives, vemd settles and stops
 *                      drained, and the failures and retries are counted
 *
 * Each test writes to topics of its own (the mock creates them on first use), so suites and
 * reruns do not see each other's events. Each prints one summary line to stderr. */
#include "itutil.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every message of a topic, read by kcat to its end: [{key, partition, offset, event}] in
 * per-partition offset order. The payloads also go, one per line, to events_path (appended). */
static json_t *s_consume(const char *topic, const char *events_path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -C -t '%s' -e -q -f '%%k\\t%%p\\t%%o\\t%%s\\n'",
             vem_test_env("VEM_TEST_KAFKA"), topic);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    FILE *out = events_path ? fopen(events_path, "a") : NULL;
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, p)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *f[4] = {line};
        for (int i = 1; i < 4; i++) {
            f[i] = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
            if (f[i])
                *f[i]++ = '\0';
        }
        ck_assert_msg(f[3] != NULL, "kcat printed a line without four fields");
        json_error_t err;
        json_t *ev = json_loads(f[3], 0, &err);
        ck_assert_msg(ev != NULL, "%s: an event that is not JSON: %s", topic, err.text);
        json_array_append_new(all, json_pack("{s:s, s:i, s:I, s:o}", "key", f[0], "partition",
                                             atoi(f[1]), "offset", (json_int_t)atoll(f[2]), "event",
                                             ev));
        if (out)
            fprintf(out, "%s\n", f[3]);
    }
    free(line);
    if (out)
        fclose(out);
    ck_assert_int_eq(pclose(p), 0);
    return all;
}

static const char *s_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Distinct events of one type per key: {key: count}, and how many copies there were. */
static json_t *s_distinct_by_key(json_t *msgs, const char *type, long *copies)
{
    json_t *seen = json_object(), *by_key = json_object();
    size_t i;
    json_t *m;
    *copies = 0;
    json_array_foreach(msgs, i, m)
    {
        json_t *ev = json_object_get(m, "event");
        if (strcmp(s_str(ev, "event_type"), type) != 0)
            continue;
        (*copies)++;
        const char *id = s_str(ev, "event_id");
        if (json_object_get(seen, id))
            continue;
        json_object_set_new(seen, id, json_true());
        const char *key = s_str(m, "key");
        json_int_t n = json_integer_value(json_object_get(by_key, key));
        json_object_set_new(by_key, key, json_integer(n + 1));
    }
    json_decref(seen);
    return by_key;
}

typedef enum {
    S_ORDER_EXACT,   /* every copy in receipt order (no replay, no retry) */
    S_ORDER_DEDUP,   /* the first copy of each event in receipt order (replays after a crash) */
    S_ORDER_NOT_SET, /* keys and partitions only (retries after failures may come late) */
} s_order_t;

/* Every message's key is its event's VIN; each key lives in one partition; a key's events
 * come in the order vemd received their inputs, as far as `order` says. */
static void s_check_keys_and_order(json_t *msgs, const char *topic, s_order_t order)
{
    bool dedup = order == S_ORDER_DEDUP;
    json_t *partition = json_object(), *last = json_object(), *seen = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *ev = json_object_get(m, "event");
        const char *key = s_str(m, "key");
        ck_assert_msg(*key, "%s: a message without a key", topic);
        const char *vin = s_str(ev, "vin");
        if (*vin)
            ck_assert_msg(strcmp(key, vin) == 0, "%s: key %s but vin %s", topic, key, vin);
        json_t *p = json_object_get(partition, key);
        if (!p)
            json_object_set(partition, key, json_object_get(m, "partition"));
        else
            ck_assert_msg(json_equal(p, json_object_get(m, "partition")),
                          "%s: key %s in two partitions", topic, key);
        const char *id = s_str(ev, "event_id");
        if (dedup && json_object_get(seen, id))
            continue;
        json_object_set_new(seen, id, json_true());
        const char *at = s_str(ev, "received_at"); /* same length and zone: text order works */
        const char *prev = s_str(last, key);
        if (*at && order != S_ORDER_NOT_SET) {
            ck_assert_msg(strcmp(prev, at) <= 0, "%s: key %s: event %s received %s after one of %s",
                          topic, key, id, at, prev);
            json_object_set_new(last, key, json_string(at));
        }
    }
    json_decref(partition);
    json_decref(last);
    json_decref(seen);
}

/* Samples per VIN (distinct event ids) equal what the trucks generated; returns the copies. */
static long s_check_samples(json_t *msgs, json_t *truth, const char *test)
{
    long copies;
    json_t *got = s_distinct_by_key(msgs, "sample", &copies);
    json_t *want = vem_it_expected_rows(truth, "obd_samples");
    fprintf(stderr, "it_kafka %s: %lld distinct sample events (%ld copies), %lld generated\n", test,
            vem_it_total(got), copies, vem_it_total(want));
    ck_assert_int_gt(vem_it_total(want), 0);
    ck_assert_uint_eq(json_object_size(got), json_object_size(want));
    const char *vin;
    json_t *n;
    json_object_foreach(want, vin, n)
    {
        json_int_t have = json_integer_value(json_object_get(got, vin));
        ck_assert_msg(have == json_integer_value(n), "%s: %lld samples generated, %lld in Kafka",
                      vin, (long long)json_integer_value(n), (long long)have);
    }
    json_decref(got);
    json_decref(want);
    return copies;
}

/* Terminal events per VIN equal the logins, logouts and removal alarms the trucks sent. */
static void s_check_terminal(json_t *msgs, json_t *truth)
{
    long copies;
    json_t *got = s_distinct_by_key(msgs, "terminal", &copies);
    const char *vin;
    json_t *c;
    json_object_foreach(json_object_get(truth, "by_vehicle"), vin, c)
    {
        json_int_t want = json_integer_value(json_object_get(c, "login")) +
                          json_integer_value(json_object_get(c, "logout")) +
                          json_integer_value(json_object_get(c, "removal_alarm"));
        json_int_t have = json_integer_value(json_object_get(got, vin));
        ck_assert_msg(have == want, "%s: %lld terminal frames sent, %lld events in Kafka", vin,
                      (long long)want, (long long)have);
    }
    json_decref(got);
}

/* The samples and terminal topics under prefix t hold every event the trucks generated, keys
 * and order as `order` says. */
static void s_check_delivered(const char *t, json_t *truth, const char *test, s_order_t order)
{
    char topic[96];
    snprintf(topic, sizeof topic, "%s.samples", t);
    json_t *samples = s_consume(topic, NULL);
    s_check_samples(samples, truth, test);
    s_check_keys_and_order(samples, "samples", order);
    snprintf(topic, sizeof topic, "%s.terminal", t);
    json_t *terminal = s_consume(topic, NULL);
    s_check_terminal(terminal, truth);
    json_decref(samples);
    json_decref(terminal);
}

/* True when emission a is of a later input than b (received_at, then spool_seq), or of the same
 * with a later or the same place after it (emission), then last_at:
 * schema/0016_merge_by_input.sql's order. */
static bool s_not_older(json_t *a, json_t *b)
{
    const char *ra = json_string_value(json_object_get(a, "received_at"));
    const char *rb = json_string_value(json_object_get(b, "received_at"));
    int c = strcmp(ra ? ra : "", rb ? rb : "");
    if (c)
        return c > 0;
    json_int_t sa = json_integer_value(json_object_get(a, "spool_seq"));
    json_int_t sb = json_integer_value(json_object_get(b, "spool_seq"));
    if (sa != sb)
        return sa > sb;
    json_int_t ea = json_integer_value(json_object_get(a, "emission"));
    json_int_t eb = json_integer_value(json_object_get(b, "emission"));
    if (ea != eb)
        return ea > eb;
    return strcmp(s_str(a, "last_at"), s_str(b, "last_at")) >= 0;
}

/* The violations topic holds exactly the violation ids PostgreSQL holds for prefix, and each
 * id's latest emission (by its input) has PostgreSQL's severity. */
static void s_check_violations(json_t *msgs, const char *prefix)
{
    json_t *latest = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *ev = json_object_get(m, "event");
        ck_assert_str_eq(s_str(ev, "event_type"), "violation");
        const char *id = s_str(ev, "violation_id");
        json_t *prev = json_object_get(latest, id);
        if (!prev || s_not_older(ev, prev))
            json_object_set(latest, id, ev);
    }
    PGconn *conn = vem_it_pg();
    const char *params[] = {prefix};
    PGresult *res = PQexecParams(conn,
                                 "SELECT violation_id, severity FROM violations "
                                 "WHERE vin LIKE $1 || '%'",
                                 1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    fprintf(stderr, "it_kafka: %d violations in PostgreSQL, %zu distinct ids in Kafka\n",
            PQntuples(res), json_object_size(latest));
    ck_assert_int_gt(PQntuples(res), 0);
    ck_assert_int_eq((int)json_object_size(latest), PQntuples(res));
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *ev = json_object_get(latest, PQgetvalue(res, r, 0));
        ck_assert_msg(ev != NULL, "violation %s is in PostgreSQL, not in Kafka",
                      PQgetvalue(res, r, 0));
        ck_assert_str_eq(s_str(ev, "severity"), PQgetvalue(res, r, 1));
    }
    PQclear(res);
    PQfinish(conn);
    json_decref(latest);
}

/* Topics named after the test: "T.samples", "T.terminal", "T.violations". */
static void s_kafka_opts(char *out, size_t cap, const char *t, const char *extra)
{
    snprintf(out, cap,
             "topic_samples = \"%s.samples\"; topic_terminal = \"%s.terminal\"; "
             "topic_violations = \"%s.violations\"; topic_rsd = \"%s.rsd\"; %s%s",
             t, t, t, t, strstr(extra, "linger_ms") ? "" : "linger_ms = 5; ", extra);
}

/* A unique topic prefix per run: the broker lives for the whole harness. */
static void s_prefix(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s%ld", name, (long)getpid());
}

/* A test on the harness's brokers begins so: PostgreSQL and the brokers up, whatever a failed
 * test before left, a topic prefix of its own in t (from name) and the sink's settings in opts
 * (with extra). Returns the brokers' pid. */
static pid_t s_kafka_begin(char *t, size_t tcap, char *opts, size_t ocap, const char *name,
                           const char *extra)
{
    vem_it_pg_up();
    pid_t broker = (pid_t)atol(vem_test_env("VEM_TEST_BROKER_PID"));
    ck_assert_int_eq(kill(broker, SIGUSR2), 0);
    s_prefix(t, tcap, name);
    s_kafka_opts(opts, ocap, t, extra);
    return broker;
}

START_TEST(end_to_end)
{
    char t[64], opts[512], events[400];
    s_kafka_begin(t, sizeof t, opts, sizeof opts, "e2e", "");
    vem_it_run_t r = {.kafka_opts = opts};
    vem_it_start(&r, "it_kafka");
    char *args[] = {"--await-replies",
                    "--trucks",
                    "8",
                    "--rate",
                    "2",
                    "--duration",
                    "15",
                    "--settle",
                    "30",
                    "--seed",
                    "41",
                    "--misbehave",
                    "mil_on:2",
                    "--misbehave",
                    "urea_empty:1",
                    "--misbehave",
                    "removal_alarm:1",
                    "--vin-prefix",
                    "LKAFE2"};
    pid_t sim = vem_it_run_sim(&r, args, sizeof args / sizeof args[0]);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    json_decref(vem_it_settled(&r));
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", "LKAFE2", truth);
    PQfinish(conn);
    snprintf(events, sizeof events, "%s/events.jsonl", r.dir);
    char topic[96];
    snprintf(topic, sizeof topic, "%s.samples", t);
    json_t *samples = s_consume(topic, events);
    snprintf(topic, sizeof topic, "%s.terminal", t);
    json_t *terminal = s_consume(topic, events);
    snprintf(topic, sizeof topic, "%s.violations", t);
    json_t *violations = s_consume(topic, events);
    /* no restart, no failure: exactly one copy of each event */
    long copies = s_check_samples(samples, truth, "end_to_end");
    json_t *want = vem_it_expected_rows(truth, "obd_samples");
    ck_assert_int_eq(copies, vem_it_total(want));
    json_decref(want);
    s_check_keys_and_order(samples, "samples", S_ORDER_EXACT);
    s_check_terminal(terminal, truth);
    s_check_keys_and_order(terminal, "terminal", S_ORDER_EXACT);
    s_check_violations(violations, "LKAFE2");
    s_check_keys_and_order(violations, "violations", S_ORDER_EXACT);
    vem_it_validate_events(events);

    /* vemctl tail, another consumer in another process: one vehicle's events, as kcat saw
     * them, in the same order */
    json_t *first = json_array_get(samples, 0);
    const char *vin = s_str(first, "key");
    json_t *ids = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(samples, i, m) if (strcmp(s_str(m, "key"), vin) == 0)
        json_array_append_new(ids, json_string(s_str(json_object_get(m, "event"), "event_id")));
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "%s/vemctl tail --brokers '%s' --from-beginning --key %s --count %zu "
             "--timeout-ms 30000 %s.samples",
             vem_test_bin_dir(), vem_test_env("VEM_TEST_KAFKA"), vin, json_array_size(ids), t);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (getline(&line, &cap, p) > 0) {
        json_error_t err;
        json_t *ev = json_loads(line, 0, &err);
        ck_assert_msg(ev != NULL, "vemctl tail printed a line that is not one event: %s", line);
        ck_assert_uint_lt(n, json_array_size(ids));
        ck_assert_str_eq(s_str(ev, "event_id"), json_string_value(json_array_get(ids, n)));
        json_decref(ev);
        n++;
    }
    free(line);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_eq(n, json_array_size(ids));
    fprintf(stderr, "it_kafka end_to_end: vemctl tail printed the %zu events of %s\n", n, vin);
    json_decref(ids);
    json_decref(samples);
    json_decref(terminal);
    json_decref(violations);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

static long long s_pg_samples(const char *prefix)
{
    PGconn *conn = vem_it_pg();
    json_t *rows = vem_it_rows_by_vin(conn, "obd_samples", prefix);
    long long n = vem_it_total(rows);
    json_decref(rows);
    PQfinish(conn);
    return n;
}

START_TEST(broker_outage_20s)
{
    char t[64], opts[512];
    /* Events time out in librdkafka well within the outage: they must come back from the
     * sink's keeping, be counted, and arrive after it. */
    pid_t broker = s_kafka_begin(t, sizeof t, opts, sizeof opts, "outage",
                                 "message_timeout_ms = 4000; retry_max_s = 2;");
    vem_it_run_t r = {.kafka_opts = opts};
    vem_it_start(&r, "it_kafka");
    char *args[] = {"--await-replies",
                    "--trucks",
                    "10",
                    "--rate",
                    "2",
                    "--duration",
                    "40",
                    "--settle",
                    "60",
                    "--seed",
                    "42",
                    "--misbehave",
                    "mil_on:2",
                    "--vin-prefix",
                    "LKAFTU"};
    pid_t sim = vem_it_run_sim(&r, args, sizeof args / sizeof args[0]);
    vem_it_sleep(8);
    ck_assert_int_eq(kill(broker, SIGUSR1), 0);
    double down_at = vem_it_mono();
    vem_it_sleep(4);
    long long pg_early = s_pg_samples("LKAFTU");
    double up_metric = 1;
    for (int i = 0; i < 10 && up_metric != 0; i++) { /* statistics come once a second */
        up_metric = vem_it_metric_now(&r, "vem_sink_up{sink=\"kafka\"}");
        vem_it_sleep(1);
    }
    vem_it_sleep(20 - (vem_it_mono() - down_at) - 1);
    long long pg_late = s_pg_samples("LKAFTU");
    vem_it_sleep(20 - (vem_it_mono() - down_at));
    ck_assert_int_eq(kill(broker, SIGUSR2), 0);
    fprintf(stderr,
            "it_kafka broker_outage_20s: brokers down for %.1f s; PostgreSQL samples %lld -> "
            "%lld during it; vem_sink_up{kafka} went to %.0f\n",
            vem_it_mono() - down_at, pg_early, pg_late, up_metric);
    ck_assert_msg(pg_late > pg_early, "PostgreSQL received nothing while the brokers were down");
    ck_assert_msg(up_metric == 0, "the Kafka sink did not notice the brokers were down");
    ck_assert_int_eq(vem_it_wait(sim, 180), 0);
    json_t *truth = vem_it_truth(&r);
    json_t *st = vem_it_settled(&r);
    double failed = vem_it_metric(st, "vem_kafka_failed_total");
    double retried = vem_it_metric(st, "vem_kafka_retried_total");
    fprintf(stderr, "it_kafka broker_outage_20s: %.0f deliveries failed, %.0f events retried\n",
            failed, retried);
    ck_assert_msg(failed > 0 && retried >= failed, "failed %.0f, retried %.0f", failed, retried);
    json_decref(st);
    s_check_delivered(t, truth, "broker_outage_20s", S_ORDER_NOT_SET);
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", "LKAFTU", truth);
    PQfinish(conn);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

START_TEST(kill9_in_flight)
{
    char t[64], opts[512];
    /* a long linger keeps events in flight when the kill comes */
    s_kafka_begin(t, sizeof t, opts, sizeof opts, "kill9", "linger_ms = 300;");
    vem_it_run_t r = {.kafka_opts = opts};
    vem_it_start(&r, "it_kafka");
    char *args[] = {"--await-replies",
                    "--trucks",
                    "12",
                    "--rate",
                    "5",
                    "--duration",
                    "20",
                    "--settle",
                    "40",
                    "--seed",
                    "43",
                    "--vin-prefix",
                    "LKAFK9"};
    pid_t sim = vem_it_run_sim(&r, args, sizeof args / sizeof args[0]);
    double in_flight[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        vem_it_sleep(5);
        in_flight[k] = vem_it_metric_now(&r, "vem_kafka_in_flight");
        ck_assert_int_eq(kill(r.vemd, SIGKILL), 0);
        ck_assert_int_eq(vem_it_wait(r.vemd, 10), 128 + SIGKILL);
        vem_it_sleep(0.5);
        vem_it_launch(&r);
    }
    fprintf(stderr, "it_kafka kill9_in_flight: killed with %.0f and %.0f events in flight\n",
            in_flight[0], in_flight[1]);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    json_decref(vem_it_settled(&r));
    s_check_delivered(t, truth, "kill9_in_flight", S_ORDER_DEDUP);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

/* The first line of a file (without its newline) into out; "" when there is none. */
static void s_read_line(const char *path, char *out, size_t cap)
{
    size_t len = 0;
    uint8_t *text = vem_test_slurp(path, &len);
    out[0] = '\0';
    if (text && len > 0 && len < cap) {
        memcpy(out, text, len);
        out[len] = '\0';
        out[strcspn(out, "\n")] = '\0';
    }
    free(text);
}

/* A vem-broker of this test's own, on ports of its own: two brokers, broker 2 leading every
 * partition of t's samples topic and broker 1 those of its other topics, so that SIGUSR1 and
 * SIGUSR2 (--fault-broker 2) stop and resume the samples alone. Its bootstrap address becomes
 * VEM_TEST_KAFKA in this test's process, for vemd's configuration and s_consume. */
static pid_t s_own_broker(const char *dir, const char *t)
{
    char bin[300], addr_path[300], log_path[300], topic[4][96], leader[4][110];
    static const char *const kinds[] = {"samples", "violations", "terminal", "rsd"};
    snprintf(bin, sizeof bin, "%s/vem-broker", vem_test_bin_dir());
    snprintf(addr_path, sizeof addr_path, "%s/kafka.addr", dir);
    snprintf(log_path, sizeof log_path, "%s/broker.log", dir);
    char *argv[24] = {bin, "--brokers", "2", "--fault-broker", "2", "--bootstrap-file", addr_path};
    int argc = 7;
    for (int i = 0; i < 4; i++) {
        snprintf(topic[i], sizeof topic[i], "%s.%s:1", t, kinds[i]);
        snprintf(leader[i], sizeof leader[i], "%s.%s=%d", t, kinds[i], i == 0 ? 2 : 1);
        argv[argc++] = "--topic";
        argv[argc++] = topic[i];
        argv[argc++] = "--leader";
        argv[argc++] = leader[i];
    }
    argv[argc] = NULL;
    pid_t pid = vem_it_spawn(argv, log_path);
    char addr[512] = "";
    for (int i = 0; i < 100 && !*addr; i++) {
        vem_it_sleep(0.1);
        s_read_line(addr_path, addr, sizeof addr);
    }
    ck_assert_msg(*addr, "vem-broker did not start; see %s", log_path);
    ck_assert_int_eq(setenv("VEM_TEST_KAFKA", addr, 1), 0);
    return pid;
}

/* Waits (up to 5 s) until the broker's log says what a signal did. */
static void s_broker_did(const char *dir, const char *what)
{
    char path[300];
    snprintf(path, sizeof path, "%s/broker.log", dir);
    for (int i = 0; i < 50; i++) {
        size_t len;
        uint8_t *log = vem_test_slurp(path, &len);
        bool done = log && memmem(log, len, what, strlen(what)) != NULL;
        free(log);
        if (done)
            return;
        vem_it_sleep(0.1);
    }
    ck_abort_msg("vem-broker did not log \"%s\"", what);
}

static unsigned long long s_kafka_cursor(const vem_it_run_t *r)
{
    char path[320], text[32];
    snprintf(path, sizeof path, "%s/spool/cursor.kafka", r->dir);
    s_read_line(path, text, sizeof text);
    ck_assert_msg(*text, "no cursor in %s", path);
    return strtoull(text, NULL, 10);
}

/* Epoch seconds of the newest sample PostgreSQL holds for vin. */
static long long s_newest_sample(const char *vin)
{
    PGconn *conn = vem_it_pg();
    const char *params[] = {vin};
    PGresult *res = PQexecParams(conn,
                                 "SELECT extract(epoch FROM max(sample_time))::bigint "
                                 "FROM obd_samples WHERE vin = $1",
                                 1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_msg(!PQgetisnull(res, 0, 0), "no sample of %s in PostgreSQL", vin);
    long long t = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return t;
}

/* The emission of rule for vin in topic, or NULL (caller decrefs). */
static json_t *s_find_verdict(const char *topic, const char *vin, const char *rule)
{
    json_t *msgs = s_consume(topic, NULL), *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *ev = json_object_get(m, "event");
        if (!found && strcmp(s_str(ev, "vin"), vin) == 0 && strcmp(s_str(ev, "rule"), rule) == 0)
            found = json_incref(ev);
    }
    json_decref(msgs);
    return found;
}

/* A trip's end by the silence sweep is judged (obd.nox_window) as a record of the last input
 * the worker judged, X, in a worker message after X's own. With X's samples held up (their
 * topic's leader down) and the verdict delivered, the Kafka cursor must stay below X: a stop
 * then must not lose X's samples. */
START_TEST(verdict_does_not_settle_undelivered_input)
{
    vem_it_pg_up();
    char t[64], opts[512], cmd[1200], vin[18];
    s_prefix(t, sizeof t, "vdsu");
    snprintf(vin, sizeof vin, "LKAFVD%011u", 0u);
    /* idle_timeout_s well above the truck's pause after its login (step 2) */
    vem_it_run_t r = {.pipeline_opts = "drain_timeout_s = 5;",
                      .terminals_opts = "idle_timeout_s = 10;",
                      .rules_opts = "enable = true; trip_gap_min = 1;"};
    /* librdkafka keeps the held samples (5 minutes by default) until well after the verdict */
    s_kafka_opts(opts, sizeof opts, t, "message_timeout_ms = 600000;");
    r.kafka_opts = opts;
    vem_it_prepare(&r, "it_kafka");
    char *saved_kafka = strdup(vem_test_env("VEM_TEST_KAFKA")); /* the harness's, put back */
    pid_t broker = s_own_broker(r.dir, t);
    vem_it_write_config(&r, "info");

    /* the registry's engine figures: without them the NOx window judges nothing */
    snprintf(cmd, sizeof cmd,
             "'%s/vem-sim' --registry '%s/registry.csv' --trucks 1 --seed 1 --vin-prefix LKAFVD "
             "&& '%s/vemctl' vehicles import '%s/registry.csv' --db \"%s\" >/dev/null",
             vem_test_bin_dir(), r.dir, vem_test_bin_dir(), r.dir, vem_test_env("VEM_TEST_PG"));
    ck_assert_int_eq(system(cmd), 0);
    PGconn *admin = vem_it_pg();
    PGresult *res = PQexec(admin, "SELECT count(*) FROM vehicles");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    double vehicles = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    PQfinish(admin);
    vem_it_launch(&r);
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_registry_vehicles") < vehicles; i++)
        vem_it_sleep(0.1);
    ck_assert(vem_it_metric_now(&r, "vem_registry_vehicles") >= vehicles);

    /* 1. One truck with its SCR removed drives 40-odd minutes of its time (60 samples a frame,
     * 5 frames a second), enough for valid NOx windows, all of them over the limit; it is killed
     * before it logs out, so its trip stays open. Everything is delivered. */
    char *drive[] = {"--trucks",     "1",
                     "--rate",       "5",
                     "--samples",    "60",
                     "--duration",   "600",
                     "--seed",       "1",
                     "--vin-prefix", "LKAFVD",
                     "--misbehave",  "scr_removed:1"};
    pid_t sim = vem_it_run_sim(&r, drive, sizeof drive / sizeof drive[0]);
    for (int i = 0; i < 600 && vem_it_metric_now(&r, "vem_inputs_total") < 46; i++)
        vem_it_sleep(0.1);
    ck_assert_int_eq(kill(sim, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(sim, 10), 128 + SIGKILL);
    json_decref(vem_it_settled(&r));

    vem_it_sleep(0.5); /* all is delivered: the cursor moves at once */
    unsigned long long before = s_kafka_cursor(&r);

    /* 2. The samples topic's leader goes down; the truck comes back as a terminal that stores
     * and forwards (--await-replies): it logs in, and 2 s after the login is answered (well
     * within idle_timeout_s) sends the frame it collected meanwhile, X (as a re-send).
     * The login is thus a worker message of its own, delivered (terminal topic), and X is the
     * only seq the cursor waits for: taken by a worker together (as once in CI, when X went at
     * once on the login's answer), the login would wait with X and hide the defect. It is killed
     * before its next frame (20 s after the start), so X stays the last input the worker judged.
     */
    ck_assert_int_eq(kill(broker, SIGUSR1), 0);
    s_broker_did(r.dir, "broker 2 down");
    double inputs = vem_it_metric_now(&r, "vem_inputs_total");
    char start[32];
    snprintf(start, sizeof start, "%lld", s_newest_sample(vin) + 1);
    char *again[] = {"--await-replies",
                     "--login-pause",
                     "2",
                     "--trucks",
                     "1",
                     "--rate",
                     "0.05",
                     "--samples",
                     "60",
                     "--duration",
                     "600",
                     "--seed",
                     "1",
                     "--vin-prefix",
                     "LKAFVD",
                     "--start-time",
                     start,
                     "--misbehave",
                     "scr_removed:1"};
    sim = vem_it_run_sim(&r, again, sizeof again / sizeof again[0]);
    for (int i = 0; i < 150 && vem_it_metric_now(&r, "vem_inputs_total") < inputs + 2; i++)
        vem_it_sleep(0.1);
    ck_assert_int_eq(kill(sim, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(sim, 10), 128 + SIGKILL);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_inputs_total"), inputs + 2);
    /* the setup: everything up to the login is delivered, X alone waits */
    for (int i = 0; i < 100 && s_kafka_cursor(&r) < before + 1; i++)
        vem_it_sleep(0.1);
    ck_assert_msg(s_kafka_cursor(&r) == before + 1,
                  "cursor.kafka at %llu, not at the login %llu before the held frame",
                  s_kafka_cursor(&r), before + 1);

    /* 3. Twice trip_gap_min of silence later the sweep ends the trip: its verdict, a record of
     * X, goes to the violations topic, whose leader is up. */
    char topic[96];
    snprintf(topic, sizeof topic, "%s.violations", t);
    double silent_from = vem_it_mono();
    json_t *verdict = NULL;
    while (!verdict && vem_it_mono() - silent_from < 200) {
        vem_it_sleep(5);
        verdict = s_find_verdict(topic, vin, "obd.nox_window");
    }
    ck_assert_msg(verdict != NULL, "no obd.nox_window verdict for %s in %s after %.0f s", vin,
                  topic, vem_it_mono() - silent_from);
    unsigned long long x =
        (unsigned long long)json_integer_value(json_object_get(verdict, "spool_seq"));
    ck_assert_msg(x == before + 2, "the verdict is a record of seq %llu, not of the frame %llu", x,
                  before + 2);
    vem_it_sleep(2); /* a cursor move waits up to 100 ms while events are in flight */
    unsigned long long cursor = s_kafka_cursor(&r);
    double in_flight = vem_it_metric_now(&r, "vem_kafka_in_flight");
    fprintf(stderr,
            "it_kafka verdict_does_not_settle_undelivered_input: verdict of seq %llu in Kafka "
            "%.0f s after the last frame; cursor.kafka %llu; %.0f events in flight\n",
            x, vem_it_mono() - silent_from, cursor, in_flight);
    ck_assert_msg(in_flight >= 60, "the last frame's 60 samples are not held up (%.0f in flight)",
                  in_flight);
    json_decref(verdict);

    /* 4. Stopped with those samples still held, the leader back, started on the same spool:
     * every sample PostgreSQL holds (its sink never stopped) is in the samples topic. */
    vem_it_halt(&r);
    ck_assert_int_eq(kill(broker, SIGUSR2), 0);
    s_broker_did(r.dir, "broker 2 up");
    vem_it_launch(&r);
    json_decref(vem_it_settled(&r));
    snprintf(topic, sizeof topic, "%s.samples", t);
    json_t *samples = s_consume(topic, NULL);
    long copies;
    json_t *got = s_distinct_by_key(samples, "sample", &copies);
    PGconn *conn = vem_it_pg();
    json_t *want = vem_it_rows_by_vin(conn, "obd_samples", "LKAFVD");
    PQfinish(conn);
    long long have = json_integer_value(json_object_get(got, vin));
    long long stored = json_integer_value(json_object_get(want, vin));
    fprintf(stderr,
            "it_kafka verdict_does_not_settle_undelivered_input: after a restart %lld samples in "
            "PostgreSQL, %lld distinct in Kafka (%ld copies)\n",
            stored, have, copies);
    /* the direct check first, then what it costs */
    ck_assert_msg(cursor < x,
                  "cursor.kafka was at %llu, at or past seq %llu (the last frame), whose samples "
                  "the brokers had not acknowledged (%.0f events in flight): the trip-end verdict "
                  "travelling as its record settled it",
                  cursor, x, in_flight);
    ck_assert_int_gt(stored, 60);
    ck_assert_msg(have == stored, "%s: %lld samples in PostgreSQL, %lld in Kafka", vin, stored,
                  have);
    json_decref(got);
    json_decref(want);
    json_decref(samples);
    vem_it_halt(&r);
    ck_assert_int_eq(kill(broker, SIGTERM), 0);
    ck_assert_int_eq(vem_it_wait(broker, 10), 0);
    vem_it_stop(&r);
    ck_assert_int_eq(setenv("VEM_TEST_KAFKA", saved_kafka, 1), 0);
    free(saved_kafka);
}
END_TEST

/* A fatal producer error (VEM_TEST_KAFKA_FATAL_AFTER) while hundreds of events wait in
 * librdkafka (a long linger), whose reports the renewal does not wait for: the sink replaces
 * its producer, every event the old one held is produced again, and vemd settles. */
START_TEST(renew_without_reports)
{
    char t[64], opts[512];
    s_kafka_begin(t, sizeof t, opts, sizeof opts, "renew", "linger_ms = 300; retry_max_s = 2;");
    vem_it_run_t r = {.kafka_opts = opts, .pipeline_opts = "drain_timeout_s = 10;"};
    ck_assert_int_eq(setenv("VEM_TEST_KAFKA_FATAL_AFTER", "3000", 1), 0);
    vem_it_start(&r, "it_kafka");
    ck_assert_int_eq(unsetenv("VEM_TEST_KAFKA_FATAL_AFTER"), 0);
    char *args[] = {"--await-replies",
                    "--trucks",
                    "12",
                    "--rate",
                    "5",
                    "--duration",
                    "10",
                    "--settle",
                    "40",
                    "--seed",
                    "44",
                    "--vin-prefix",
                    "LKAFRN"};
    pid_t sim = vem_it_run_sim(&r, args, sizeof args / sizeof args[0]);
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_t *truth = vem_it_truth(&r);
    ck_assert_msg(vem_it_log_has(&r, "fatal producer error"), "no fatal error was raised");
    /* the events the old producer held settle too: every input done in the Kafka sink */
    json_t *st = vem_it_settled(&r);
    double failed = vem_it_metric(st, "vem_kafka_failed_total");
    double retried = vem_it_metric(st, "vem_kafka_retried_total");
    json_decref(st);
    fprintf(stderr, "it_kafka renew_without_reports: %.0f deliveries failed, %.0f retried\n",
            failed, retried);
    ck_assert_msg(failed > 0 && retried >= failed, "failed %.0f, retried %.0f", failed, retried);
    s_check_delivered(t, truth, "renew_without_reports", S_ORDER_NOT_SET);
    json_decref(truth);
    vem_it_halt(&r);
    ck_assert_msg(!vem_it_log_has(&r, "stopping with events undelivered"),
                  "vemd stopped with events of the old producer undelivered");
    vem_it_stop(&r);
}
END_TEST

/* Runs vemd --check-config on a file with the given kafka group; returns its exit status and
 * whether its output held `text`. */
static int s_check_config(const char *group, const char *text, bool *found)
{
    char dir[256], path[300], cmd[900];
    vem_test_mkdtemp("it_kafka_cfg", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/vemd.cfg", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "kafka: { enable = true; %s };\n", group);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/vemd --check-config '%s' > '%s/out' 2>&1", vem_test_bin_dir(),
             path, dir);
    int rc = system(cmd);
    snprintf(path, sizeof path, "%s/out", dir);
    size_t len;
    uint8_t *out = vem_test_slurp(path, &len);
    *found = out && memmem(out, len, text, strlen(text)) != NULL;
    free(out);
    vem_test_rmtree(dir);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* --check-config asks librdkafka about kafka.properties: unknown names and bad values are
 * refused with its reason, what the delivery guarantee rests on cannot be changed, and a
 * real cluster's security settings pass. */
START_TEST(check_config_asks_librdkafka)
{
    bool found;
    ck_assert_int_eq(s_check_config("properties = [ \"no.such.property=1\" ];",
                                    "No such configuration property: \"no.such.property\"", &found),
                     1);
    ck_assert(found);
    ck_assert_int_eq(s_check_config("properties = [ \"linger.ms=forever\" ];",
                                    "linger.ms=forever refused by librdkafka", &found),
                     1);
    ck_assert(found);
    ck_assert_int_eq(s_check_config("properties = [ \"acks=1\" ];", "acks is set by vemd", &found),
                     1);
    ck_assert(found);
    ck_assert_int_eq(s_check_config("brokers = \"k1:9093,k2:9093\"; properties = [ "
                                    "\"security.protocol=SASL_PLAINTEXT\", "
                                    "\"sasl.mechanism=PLAIN\", \"sasl.username=vemd\", "
                                    "\"sasl.password=secret\" ];",
                                    ": ok", &found),
                     0);
    ck_assert(found);
}
END_TEST

Suite *vem_suite_kafka(void);

Suite *vem_suite_kafka(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, check_config_asks_librdkafka);
    tcase_add_test(tc, end_to_end);
    tcase_add_test(tc, broker_outage_20s);
    tcase_add_test(tc, kill9_in_flight);
    suite_add_tcase(s, tc);
    /* its own tcase: two minutes of silence before the verdict, and its own broker */
    tc = tcase_create("one_topic_down");
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, verdict_does_not_settle_undelivered_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("renew");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, renew_without_reports);
    suite_add_tcase(s, tc);
    return s;
}
